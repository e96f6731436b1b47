package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-im/herald/optin"
)

// TestCampaignThroughTheAPI is what the README shows: create, preview,
// schedule, watch stats, follow the click link.
func TestCampaignThroughTheAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.sim.NewFCMToken()
	ext := "buyer-" + randomSuffix()
	res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext,
		"identity_hmac": optin.IdentityHMAC(b.identity, ext), "device": map[string]any{"platform": "fcm", "token": token}})
	if res.status != http.StatusAccepted {
		t.Fatalf("subscribe: %d %s", res.status, res.body)
	}
	// The confirmation push goes first: confirming through the admin API
	// before its job runs would (rightly) cancel it.
	b.waitReceived("fcm", token, 1)
	var subID float64
	list := b.do(http.MethodGet, "/api/v1/subscribers?external_id="+ext, b.admin, "", nil).json(t)
	subID = list["items"].([]any)[0].(map[string]any)["id"].(float64)
	b.do(http.MethodPut, fmt.Sprintf("/api/v1/lists/%s/subscribers/%d", b.list, int64(subID)), b.admin, "application/json", []byte(`{"status":"confirmed"}`))

	create := b.postJSON("/api/v1/campaigns", b.marketer, map[string]any{
		"app": b.appSlug, "name": "Spring sale",
		"content":  map[string]any{"title": "Spring sale", "body": "20% off", "url": "https://shop.example.com/sale"},
		"audience": map[string]any{"lists": []string{b.list}},
	})
	if create.status != http.StatusCreated {
		t.Fatalf("create: %d %s", create.status, create.body)
	}
	id := int64(create.json(t)["id"].(float64))
	if r := b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d", id), b.agent, "", nil); r.status != http.StatusForbidden {
		t.Fatalf("agent read a campaign: %d", r.status)
	}
	preview := b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d/preview", id), b.marketer, "", nil).json(t)
	if d, _ := preview["devices"].(float64); d != 1 {
		t.Fatalf("preview %v", preview)
	}
	if r := b.postJSON(fmt.Sprintf("/api/v1/campaigns/%d/schedule", id), b.marketer, nil); r.status != http.StatusOK {
		t.Fatalf("schedule: %d %s", r.status, r.body)
	}
	if r := b.postJSON(fmt.Sprintf("/api/v1/campaigns/%d/schedule", id), b.marketer, nil); r.status != http.StatusConflict {
		t.Fatalf("scheduling twice: %d %s", r.status, r.body)
	}
	var stats map[string]any
	waitFor(t, func() bool {
		stats = b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d/stats", id), b.marketer, "", nil).json(t)
		return stats["status"] == "finished"
	})
	if stats["delivered"].(float64) != 1 || stats["resent"].(float64) != 0 || stats["unknown"].(float64) != 0 {
		t.Fatalf("stats %v", stats)
	}
	deliveries := b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d/deliveries?status=delivered&limit=10", id), b.marketer, "", nil).json(t)
	if items := deliveries["items"].([]any); len(items) != 1 || items[0].(map[string]any)["platform"] != "fcm" {
		t.Fatalf("deliveries %v", deliveries)
	}
	// Nothing failed, so retrying (unknown ones too) queues nothing.
	if r := b.postJSON(fmt.Sprintf("/api/v1/campaigns/%d/retry-failed", id), b.marketer, map[string]any{"include_unknown": true}); r.status != http.StatusAccepted || r.json(t)["queued"].(float64) != 0 {
		t.Fatalf("retry-failed: %d %s", r.status, r.body)
	}
	// Editing a finished campaign is refused with 409.
	if r := b.do(http.MethodPatch, fmt.Sprintf("/api/v1/campaigns/%d", id), b.marketer, "application/json", []byte(`{"name":"x"}`)); r.status != http.StatusConflict {
		t.Fatalf("edit finished: %d %s", r.status, r.body)
	}
	got := b.waitReceived("fcm", token, 2) // the confirmation, then the campaign
	payload := string(got[1].Payload)
	i := strings.Index(payload, "http://herald.test/c/")
	link := payload[i : i+strings.IndexByte(payload[i:], '"')]
	click := b.do(http.MethodGet, b.pathOf(link), "", "", nil)
	if click.status != http.StatusFound || click.header.Get("Location") != "https://shop.example.com/sale" {
		t.Fatalf("click: %d %v", click.status, click.header)
	}
}

func TestCampaignHostileInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		body   string
		status int
		field  string
	}{
		{`{"name":"x","content":{"title":"x"},"audience":{"lists":["nope-nope"]}}`, 422, "audience.lists"},
		{`{"name":"x","content":{"title":"x"},"audience":{"lists":[]}}`, 422, "audience.lists"},
		{`{"name":"x","content":{"title":"x","url":"javascript:alert(1)"},"audience":{"lists":["` + b.list + `"]}}`, 422, "content.url"},
		{`{"name":"x","content":{"title":"x"},"audience":{"lists":["` + b.list + `"],"segment":{"attr":"a'--","op":"exists"}}}`, 422, "audience.segment.attr"},
		{`{"name":"x","content":{"title":"x"},"audience":{"lists":["` + b.list + `"]},"schedule":{"mode":"local","local_date":"tomorrow"}}`, 422, "schedule.local_date"},
		{`{"name":"x","content":{"title":"x"},"audience":{"lists":["` + b.list + `"]},"schedule":{"mode":"at"}}`, 422, "schedule.at"},
		{`{"name":"x","content":{"title":"x"},"audience":{"lists":["` + b.list + `"]},"throttle_per_minute":0}`, 422, "throttle_per_minute"},
		{`{"name":"x","content":{"title":"x"},"audience":{"lists":["` + b.list + `"]},"sql":"DROP TABLE"}`, 400, "sql"},
	}
	for _, tt := range tests {
		r := b.do(http.MethodPost, "/api/v1/campaigns", b.marketer, "application/json", []byte(tt.body))
		if r.status != tt.status || r.json(t)["field"] != tt.field {
			t.Errorf("%s: %d %s", tt.body, r.status, r.body)
		}
	}
	if r := b.do(http.MethodPost, "/api/v1/campaigns/999999/schedule", b.marketer, "", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown campaign: %d", r.status)
	}
	if r := b.do(http.MethodGet, "/c/forged-token", "", "", nil); r.status != http.StatusNotFound {
		t.Errorf("forged click: %d", r.status)
	}
	create := b.postJSON("/api/v1/campaigns", b.marketer, map[string]any{"app": b.appSlug, "name": "x",
		"content": map[string]any{"title": "x"}, "audience": map[string]any{"lists": []string{b.list}}})
	id := int64(create.json(t)["id"].(float64))
	for _, tt := range []struct {
		query  string
		status int
		field  string
	}{
		{"status=sent", 422, "status"},
		{"status=failed%27%3B--", 422, "status"},
		{"reason=%00", 422, "reason"},
		{"reason=device_gone%20OR%201%3D1", 422, "reason"},
		{"after=-1", 422, "after"},
		{"limit=100000", 422, "limit"},
		{"status=failed&reason=device_gone&after=0&limit=5", 200, ""},
	} {
		r := b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d/deliveries?%s", id, tt.query), b.marketer, "", nil)
		if r.status != tt.status || tt.field != "" && r.json(t)["field"] != tt.field {
			t.Errorf("deliveries?%s: %d %s", tt.query, r.status, r.body)
		}
	}
	if r := b.do(http.MethodGet, "/api/v1/campaigns/999999/deliveries", b.marketer, "", nil); r.status != http.StatusNotFound {
		t.Errorf("deliveries of an unknown campaign: %d", r.status)
	}
	if r := b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d/deliveries", id), b.agent, "", nil); r.status != http.StatusForbidden {
		t.Errorf("an agent read deliveries: %d", r.status)
	}
	for _, body := range []string{`{"include_unknown":"yes"}`, `{"include_unknown":true,"x":1}`, `[]`, "{\"include_unknown\":tru\u0000e}"} {
		r := b.do(http.MethodPost, fmt.Sprintf("/api/v1/campaigns/%d/retry-failed", id), b.marketer, "application/json", []byte(body))
		if r.status != http.StatusBadRequest && r.status != http.StatusUnprocessableEntity {
			t.Errorf("retry-failed %s: %d %s", body, r.status, r.body)
		}
	}
}
