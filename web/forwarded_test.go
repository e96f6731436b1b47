package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/herald-im/herald/optin"
)

// TestForgedForwardedForDoesNotChangeTheAddress: behind Herald's proxy, a
// client can put anything in X-Forwarded-For before the entry the proxy
// adds. Rotating that part must not buy a fresh budget of failed proofs.
func TestForgedForwardedForDoesNotChangeTheAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ext, _ := b.owner(b.app)
	wrong := optin.IdentityHMAC("not-the-identity-secret", ext)
	limited := false
	for i := range b.cfg.RateLimitPerSubscriber + 2 {
		xff := fmt.Sprintf("203.0.113.%d, 198.51.100.77", i+1) // forged, then the proxy's
		r := b.doFrom(b.app, xff, http.MethodPost, "/public/v1/preferences", "", "application/json", b.identityBody(ext, wrong))
		if r.status == http.StatusTooManyRequests {
			limited = true
			break
		}
		if r.status != http.StatusForbidden {
			t.Fatalf("attempt %d: %d %s", i+1, r.status, r.body)
		}
	}
	if !limited {
		t.Fatal("forged X-Forwarded-For entries bought a fresh budget each time")
	}
}
