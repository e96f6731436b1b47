package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/webhooks"
)

func TestWebhooksThroughTheAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got := make(chan error, 10)
	var secret string
	ready := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-ready
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"type":"message.received"`) || !strings.Contains(string(body), "webhook hello") {
			return // another test's event
		}
		got <- webhooks.Verify(secret, r.Header, body, time.Minute, time.Now())
	}))
	defer receiver.Close()
	if res := b.postJSON("/api/v1/webhooks", b.agent, map[string]any{"url": receiver.URL}); res.status != http.StatusForbidden {
		t.Fatalf("an agent made a webhook: %d", res.status)
	}
	res := b.postJSON("/api/v1/webhooks", b.admin, map[string]any{"url": receiver.URL, "events": []string{"message.received"}})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var created struct {
		Endpoint webhooks.Endpoint `json:"endpoint"`
		Secret   string            `json:"secret"`
	}
	json.Unmarshal(res.body, &created)
	secret = created.Secret
	close(ready)
	if list := b.do(http.MethodGet, "/api/v1/webhooks", b.admin, "", nil); strings.Contains(string(list.body), secret) {
		t.Fatal("the secret is shown again")
	}
	token, _, _ := b.subscriberSession()
	if res := b.postJSON("/public/v1/conversation/messages", token, map[string]any{"body": "webhook hello"}); res.status != http.StatusCreated {
		t.Fatalf("send: %d %s", res.status, res.body)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("signature: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook within 15 s")
	}
	log := b.do(http.MethodGet, fmt.Sprintf("/api/v1/webhooks/%d/deliveries", created.Endpoint.ID), b.admin, "", nil)
	if log.status != http.StatusOK || !strings.Contains(string(log.body), `"event_type":"message.received"`) {
		t.Fatalf("log: %d %s", log.status, log.body)
	}
}
