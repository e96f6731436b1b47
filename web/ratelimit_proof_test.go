package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// owner is a person subscribed to the bundle's list from their app, with
// the identity proof their app's backend computes.
func (b *testBundle) owner(app *fiber.App) (ext, proof string) {
	b.t.Helper()
	ext = "owner-" + randomSuffix()
	proof = optin.IdentityHMAC(b.identity, ext)
	body, _ := json.Marshal(map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext, "identity_hmac": proof,
		"device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}})
	if r := b.doFrom(app, "192.0.2.1", http.MethodPost, "/public/v1/subscribe", "", "application/json", body); r.status != http.StatusAccepted {
		b.t.Fatalf("owner subscribes: %d %s", r.status, r.body)
	}
	return ext, proof
}

func (b *testBundle) identityBody(ext, proof string) []byte {
	body, _ := json.Marshal(map[string]any{"app": b.appSlug, "external_id": ext, "identity_hmac": proof})
	return body
}

// TestWrongProofsDoNotLockOutTheOwner is the attack: requests naming a
// person's external_id with a wrong identity_hmac, from many addresses, as
// many as the per-subscriber limit allows. They must not spend that
// person's budget: their own signed unsubscribe then goes through.
func TestWrongProofsDoNotLockOutTheOwner(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/public/v1/unsubscribe", "/public/v1/preferences", "/public/v1/subscribe"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ext, proof := b.owner(b.app)
			wrong := optin.IdentityHMAC("not-the-identity-secret", ext)
			for i := range b.cfg.RateLimitPerSubscriber + 5 {
				body, _ := json.Marshal(map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext, "identity_hmac": wrong,
					"device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}})
				if path != "/public/v1/subscribe" {
					body = b.identityBody(ext, wrong)
				}
				r := b.doFrom(b.app, fmt.Sprintf("203.0.113.%d", i+1), http.MethodPost, path, "", "application/json", body)
				if r.status != http.StatusForbidden {
					t.Fatalf("attack %d: %d %s", i+1, r.status, r.body)
				}
			}
			r := b.doFrom(b.app, "192.0.2.1", http.MethodPost, "/public/v1/unsubscribe", "", "application/json", b.identityBody(ext, proof))
			if r.status != http.StatusOK {
				t.Fatalf("the owner's unsubscribe: %d %s", r.status, r.body)
			}
			if st := b.membership(b.subscriberID(ext)); st != subscribers.StatusUnsubscribed {
				t.Fatalf("membership %s after the owner's unsubscribe", st)
			}
		})
	}
}

func (b *testBundle) subscriberID(ext string) int64 {
	b.t.Helper()
	var id int64
	if err := b.pool.QueryRow(b.t.Context(), `SELECT id FROM subscribers WHERE external_id = $1`, ext).Scan(&id); err != nil {
		b.t.Fatal(err)
	}
	return id
}

// TestFailedProofsCountAgainstTheAddress: an address that fails as many
// proofs a minute as the per-subscriber limit gets 429 with Retry-After for
// requests that carry one, while other addresses are untouched, and the
// owner's proof still unsubscribes from that very address.
func TestFailedProofsCountAgainstTheAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := b.appWith(nil)
	ext, proof := b.owner(app)
	const guesser = "203.0.113.200"
	for i := range b.cfg.RateLimitPerSubscriber {
		r := b.doFrom(app, guesser, http.MethodPost, "/public/v1/preferences", "", "application/json",
			[]byte(`{"subscriber_token":"guess-`+strconv.Itoa(i)+`"}`))
		if r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := b.doFrom(app, guesser, http.MethodPost, "/public/v1/preferences", "", "application/json", b.identityBody(ext, proof))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("after the address's failed proofs: %d %v %s", r.status, r.header, r.body)
	}
	if r := b.doFrom(app, "192.0.2.77", http.MethodPost, "/public/v1/preferences", "", "application/json", b.identityBody(ext, proof)); r.status != http.StatusOK {
		t.Fatalf("from another address: %d %s", r.status, r.body)
	}
	if r := b.doFrom(app, guesser, http.MethodPost, "/public/v1/unsubscribe", "", "application/json", b.identityBody(ext, proof)); r.status != http.StatusOK {
		t.Fatalf("the owner's unsubscribe from the same address: %d %s", r.status, r.body)
	}
	if r := b.doFrom(app, guesser, http.MethodPost, "/public/v1/unsubscribe", "", "application/json", b.identityBody(ext, "00")); r.status != http.StatusTooManyRequests {
		t.Fatalf("another failed proof from that address: %d %s", r.status, r.body)
	}
}

// TestUnsubscribeIsNeverLimitedForTheOwner: an owner who used up their own
// per-subscriber budget, from an address that used up its own, still
// unsubscribes, by the API and by link; callers without a proof that holds
// are limited as before.
func TestUnsubscribeIsNeverLimitedForTheOwner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const perIP = 5
	app := b.appWith(func(c *config.Config) { c.RateLimitPerIP = perIP })
	ext, proof := b.owner(app)
	const addr = "198.51.100.99" // not one of the 198.51.100.100+ below
	var last *response
	for i := range b.cfg.RateLimitPerSubscriber + 1 {
		// Many addresses, so that only the subscriber's budget runs out.
		last = b.doFrom(app, "198.51.100."+strconv.Itoa(100+i), http.MethodPost, "/public/v1/preferences", "", "application/json", b.identityBody(ext, proof))
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("past the subscriber's budget: %d %v %s", last.status, last.header, last.body)
	}
	for range perIP {
		b.doFrom(app, addr, http.MethodGet, "/public/v1/apps/"+b.appSlug, "", "", nil)
	}
	if r := b.doFrom(app, addr, http.MethodGet, "/public/v1/apps/"+b.appSlug, "", "", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("past the address's budget: %d %s", r.status, r.body)
	}
	if r := b.doFrom(app, addr, http.MethodPost, "/public/v1/unsubscribe", "", "application/json", b.identityBody(ext, "00")); r.status != http.StatusTooManyRequests {
		t.Fatalf("unsubscribe without a proof that holds, past the address's budget: %d %s", r.status, r.body)
	}
	if r := b.doFrom(app, addr, http.MethodPost, "/public/v1/unsubscribe", "", "application/json", []byte(`{`)); r.status != http.StatusTooManyRequests {
		t.Fatalf("malformed unsubscribe past the address's budget: %d %s", r.status, r.body)
	}
	r := b.doFrom(app, addr, http.MethodPost, "/public/v1/unsubscribe", "", "application/json", b.identityBody(ext, proof))
	if r.status != http.StatusOK {
		t.Fatalf("the owner's unsubscribe: %d %s", r.status, r.body)
	}
	// One-click links, past the address's budget: a link that verifies
	// works, page and button; a forged one is limited.
	link := b.pathOf(b.optin.UnsubscribeURL(b.subscriberID(ext), 0))
	if r := b.doFrom(app, addr, http.MethodGet, link, "", "", nil); r.status != http.StatusOK {
		t.Fatalf("unsubscribe page: %d %s", r.status, r.body)
	}
	if r := b.doFrom(app, addr, http.MethodPost, link, "", "application/x-www-form-urlencoded", []byte("List-Unsubscribe=One-Click")); r.status != http.StatusOK {
		t.Fatalf("one-click unsubscribe: %d %s", r.status, r.body)
	}
	prefs := b.pathOf(b.optin.PreferencesURL(b.subscriberID(ext)))
	if r := b.doFrom(app, addr, http.MethodPost, prefs, "", "application/x-www-form-urlencoded", []byte("list="+b.list)); r.status != http.StatusSeeOther {
		t.Fatalf("preference page: %d %s", r.status, r.body)
	}
	if r := b.doFrom(app, addr, http.MethodPost, "/u/forged", "", "application/x-www-form-urlencoded", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("forged link past the address's budget: %d %s", r.status, r.body)
	}
}
