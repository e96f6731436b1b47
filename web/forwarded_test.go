package web_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
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

	// A proxy that adds its own header line (HAProxy's forwardfor) rather
	// than appending: the client's line comes first.
	b2 := setup(t)
	ext2, _ := b2.owner(b2.app)
	wrong2 := optin.IdentityHMAC("not-the-identity-secret", ext2)
	for i := range b2.cfg.RateLimitPerSubscriber + 2 {
		req := httptest.NewRequest(http.MethodPost, "/public/v1/preferences", bytes.NewReader(b2.identityBody(ext2, wrong2)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		req.Header.Add("X-Forwarded-For", "198.51.100.78")
		resp, err := b2.app.Test(req, 30_000)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("a forged first X-Forwarded-For line bought a fresh budget each time")
}

// TestAnIPv6NetworkSharesOneBudget: one subscriber line gets a whole /64;
// walking through its addresses does not buy a fresh budget each time.
func TestAnIPv6NetworkSharesOneBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ext, _ := b.owner(b.app)
	wrong := optin.IdentityHMAC("not-the-identity-secret", ext)
	for i := range b.cfg.RateLimitPerSubscriber + 2 {
		r := b.doFrom(b.app, fmt.Sprintf("2001:db8:1:2::%x", i+1), http.MethodPost, "/public/v1/preferences", "", "application/json",
			b.identityBody(ext, wrong))
		if r.status == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("each address of one /64 got its own budget")
}
