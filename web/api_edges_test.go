package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/herald-im/herald/optin"
)

// TestAPIEdges holds the API to what docs/api.md says at its edges.
func TestAPIEdges(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("AuditLogFiltersEveryActorType", func(t *testing.T) {
		t.Parallel()
		for _, kind := range []string{"user", "api_key", "operator", "subscriber", "system"} {
			if res := b.do(http.MethodGet, "/api/v1/audit-log?actor_type="+kind, b.admin, "", nil); res.status != http.StatusOK {
				t.Errorf("actor_type=%s: %d %s", kind, res.status, res.body)
			}
		}
	})

	t.Run("SecretRotationWithoutABodyTakesTheDefault", func(t *testing.T) {
		t.Parallel()
		created := b.postJSON("/api/v1/webhooks", b.admin, map[string]any{"url": "https://crm.example.com/hooks/" + randomSuffix()})
		if created.status != http.StatusCreated {
			t.Fatalf("create: %d %s", created.status, created.body)
		}
		id := int64(created.json(t)["endpoint"].(map[string]any)["id"].(float64))
		res := b.do(http.MethodPost, fmt.Sprintf("/api/v1/webhooks/%d/rotate-secret", id), b.admin, "", nil)
		if res.status != http.StatusOK || res.json(t)["previous_secret_valid_for_seconds"] != float64(86400) {
			t.Fatalf("rotate without a body: %d %s", res.status, res.body)
		}
	})

	t.Run("ConsentHistoryByRole", func(t *testing.T) {
		t.Parallel()
		ext := "consent-" + randomSuffix()
		if res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext,
			"identity_hmac": optin.IdentityHMAC(b.identity, ext), "device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}}); res.status >= 300 {
			t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
		list := b.do(http.MethodGet, "/api/v1/subscribers?external_id="+ext, b.admin, "", nil).json(t)
		path := fmt.Sprintf("/api/v1/subscribers/%d/consent", int64(list["items"].([]any)[0].(map[string]any)["id"].(float64)))
		first := func(key string) map[string]any {
			t.Helper()
			res := b.do(http.MethodGet, path, key, "", nil)
			items, _ := res.json(t)["items"].([]any)
			if res.status != http.StatusOK || len(items) == 0 {
				t.Fatalf("consent history: %d %s", res.status, res.body)
			}
			return items[0].(map[string]any)
		}
		if rec := first(b.admin); rec["action"] != "opt_in_request" || rec["ip"] == nil {
			t.Errorf("admin's view: %v", rec)
		}
		if rec := first(b.marketer); rec["action"] != "opt_in_request" || rec["ip"] != nil || rec["user_agent"] != nil {
			t.Errorf("marketer's view shows the evidence that names a person: %v", rec)
		}
		for _, tt := range []struct {
			path, key string
			status    int
		}{{path, b.agent, http.StatusForbidden}, {path + "?limit=0", b.admin, http.StatusUnprocessableEntity},
			{path + "?before=x", b.admin, http.StatusUnprocessableEntity}, {"/api/v1/subscribers/999999999/consent", b.admin, http.StatusNotFound}} {
			if res := b.do(http.MethodGet, tt.path, tt.key, "", nil); res.status != tt.status {
				t.Errorf("%s: %d, want %d", tt.path, res.status, tt.status)
			}
		}
	})

	t.Run("ConversationTokenSchemeInAnyCase", func(t *testing.T) {
		t.Parallel()
		token, _, _ := b.subscriberSession()
		for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
			res := b.doFrom(b.app, "198.51.100.91", http.MethodGet, "/public/v1/conversation/messages", "", "", nil,
				"Authorization", scheme+" "+token)
			if res.status != http.StatusOK {
				t.Errorf("%s: %d %s", scheme, res.status, res.body)
			}
		}
	})
}
