package web_test

import (
	"fmt"
	"net/http"
	"testing"
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
