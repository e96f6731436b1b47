package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestAPIKeysThroughTheAPI: an admin lists keys (never their secrets) and
// revokes one, which stops working at once; nobody else may.
func TestAPIKeysThroughTheAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.postJSON("/api/v1/api-keys", b.admin, map[string]any{"name": "bot " + randomSuffix(), "role": "agent"})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	secret := created.json(t)["key"].(string)
	id := int64(created.json(t)["api_key"].(map[string]any)["id"].(float64))
	list := b.do(http.MethodGet, "/api/v1/api-keys", b.admin, "", nil)
	if list.status != http.StatusOK || strings.Contains(string(list.body), secret) || !strings.Contains(string(list.body), fmt.Sprintf(`"id":%d`, id)) {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	for _, key := range []string{b.marketer, b.agent} {
		if r := b.do(http.MethodGet, "/api/v1/api-keys", key, "", nil); r.status != http.StatusForbidden {
			t.Fatalf("a lesser role listed keys: %d", r.status)
		}
		if r := b.do(http.MethodDelete, fmt.Sprintf("/api/v1/api-keys/%d", id), key, "", nil); r.status != http.StatusForbidden {
			t.Fatalf("a lesser role revoked a key: %d", r.status)
		}
	}
	if r := b.do(http.MethodGet, "/api/v1/subscribers", secret, "", nil); r.status != http.StatusOK {
		t.Fatalf("the new key does not work: %d", r.status)
	}
	if r := b.do(http.MethodDelete, fmt.Sprintf("/api/v1/api-keys/%d", id), b.admin, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := b.do(http.MethodGet, "/api/v1/subscribers", secret, "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("a revoked key still works: %d", r.status)
	}
	for path, want := range map[string]int{"/api/v1/api-keys/999999999": 404, "/api/v1/api-keys/x": 422, "/api/v1/api-keys/-1": 422} {
		if r := b.do(http.MethodDelete, path, b.admin, "", nil); r.status != want {
			t.Fatalf("%s: %d, want %d", path, r.status, want)
		}
	}
}
