package web_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/herald-im/herald/optin"
)

// TestDeviceOwnership attacks the public subscribe endpoint with other
// people's push tokens on every platform: a known token is no proof of
// ownership (docs/api.md, "Who owns a device").
func TestDeviceOwnership(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type device struct {
		name     string
		platform string
		body     func(b *testBundle) map[string]any
		token    func(d map[string]any) string
	}
	native := func(b *testBundle, platform string) map[string]any {
		if platform == "apns" {
			return map[string]any{"platform": "apns", "token": b.sim.NewAPNsToken(false), "bundle_id": "com.example.app"}
		}
		return map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}
	}
	devices := []device{
		{"APNs", "apns", func(b *testBundle) map[string]any { return native(b, "apns") }, func(d map[string]any) string { return d["token"].(string) }},
		{"FCM", "fcm", func(b *testBundle) map[string]any { return native(b, "fcm") }, func(d map[string]any) string { return d["token"].(string) }},
		{"WebPush", "webpush", func(b *testBundle) map[string]any { return webPushDevice(b.webPushSubscription()) },
			func(d map[string]any) string { return d["subscription"].(map[string]any)["endpoint"].(string) }},
	}
	subscribe := func(b *testBundle, dev map[string]any, who map[string]any) *response {
		body := map[string]any{"app": b.appSlug, "list": b.list, "device": dev}
		for k, v := range who {
			body[k] = v
		}
		return b.postJSON("/public/v1/subscribe", "", body)
	}
	verified := func(b *testBundle, ext string) map[string]any {
		return map[string]any{"external_id": ext, "identity_hmac": optin.IdentityHMAC(b.identity, ext)}
	}
	owner := func(b *testBundle, token string) int64 {
		var id int64
		if err := b.pool.QueryRow(ctx, `SELECT subscriber_id FROM devices WHERE app_id = $1 AND token = $2`, b.appID, token).Scan(&id); err != nil {
			b.t.Fatal(err)
		}
		return id
	}
	confirm := func(b *testBundle, subscriberID int64) {
		if r := b.do(http.MethodPut, fmt.Sprintf("/api/v1/lists/%s/subscribers/%d", b.list, subscriberID), b.admin,
			"application/json", []byte(`{"status":"confirmed"}`)); r.status != http.StatusOK {
			b.t.Fatalf("confirm: %d %s", r.status, r.body)
		}
	}
	// memberships is what a subscriber token manages.
	memberships := func(b *testBundle, token string) []any {
		r := b.postJSON("/public/v1/preferences", "", map[string]any{"subscriber_token": token})
		if r.status != http.StatusOK {
			b.t.Fatalf("preferences: %d %s", r.status, r.body)
		}
		return r.json(b.t)["memberships"].([]any)
	}

	for _, d := range devices {
		t.Run("AnAnonymousRequestWithAKnownTokenTakesNothing/"+d.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			dev := d.body(b)
			token := d.token(dev)
			r := subscribe(b, dev, nil)
			if r.status != http.StatusAccepted {
				t.Fatalf("owner subscribe: %d %s", r.status, r.body)
			}
			ownerToken := r.json(t)["subscriber_token"].(string)
			victim := owner(b, token)
			b.waitReceived(d.platform, token, 1) // the owner's confirmation
			confirm(b, victim)

			// Someone who learned the token subscribes with it, anonymously.
			r = subscribe(b, dev, nil)
			if r.status != http.StatusAccepted && r.status != http.StatusOK {
				t.Fatalf("second subscribe: %d %s", r.status, r.body)
			}
			if d.platform == "webpush" {
				// Holding the very subscription, auth secret included, is
				// what only the owner's browser does: it is the owner again.
				if got := owner(b, token); got != victim {
					t.Fatalf("the device moved from %d to %d", victim, got)
				}
				return
			}
			attackerToken := r.json(t)["subscriber_token"].(string)
			if attackerToken == ownerToken || owner(b, token) != victim {
				t.Fatal("the device or its owner's token went to the second request")
			}
			if m := memberships(b, attackerToken); len(m) != 1 || m[0].(map[string]any)["status"] != "pending" {
				t.Fatalf("the second request's token manages %v", m)
			}
			// With that token, leaving every list leaves only its own.
			if r := b.postJSON("/public/v1/unsubscribe", "", map[string]any{"subscriber_token": attackerToken}); r.status != http.StatusOK {
				t.Fatalf("unsubscribe: %d %s", r.status, r.body)
			}
			if got := b.membership(victim); got != "confirmed" {
				t.Fatalf("the owner's membership is %s", got)
			}
			// No confirmation of the stranger's request went to the device.
			if n := len(b.sim.Received(d.platform, token)); n != 1 {
				t.Fatalf("the device received %d messages, want only its owner's confirmation", n)
			}
		})

		t.Run("AVerifiedOwnersDeviceMovesOnlyOnAnIdentityProof/"+d.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			dev := d.body(b)
			token := d.token(dev)
			if r := subscribe(b, dev, verified(b, "ada-"+randomSuffix())); r.status != http.StatusAccepted {
				t.Fatalf("owner subscribe: %d %s", r.status, r.body)
			}
			ada := owner(b, token)
			// Anonymously, and with another person's subscriber token.
			other := subscribe(b, d.body(b), nil).json(t)["subscriber_token"].(string)
			for _, who := range []map[string]any{nil, {"subscriber_token": other}} {
				r := subscribe(b, dev, who)
				if r.status >= 300 {
					t.Fatalf("subscribe %v: %d %s", who, r.status, r.body)
				}
				if got := owner(b, token); got != ada {
					t.Fatalf("request %v moved the device from %d to %d", who, ada, got)
				}
			}
			// A wrong proof is refused.
			if r := subscribe(b, dev, map[string]any{"external_id": "eve", "identity_hmac": optin.IdentityHMAC("not-the-secret", "eve")}); r.status != http.StatusForbidden {
				t.Fatalf("a forged proof: %d %s", r.status, r.body)
			}
			// The app's backend vouching for another signed-in user moves it:
			// a phone handed on, an account switched.
			if r := subscribe(b, dev, verified(b, "bob-"+randomSuffix())); r.status != http.StatusAccepted {
				t.Fatalf("verified subscribe: %d %s", r.status, r.body)
			}
			if got := owner(b, token); got == ada {
				t.Fatal("a verified identity did not take the device")
			}
		})
	}

	t.Run("FirstRegistrationsAtOnceDoNotOverwriteEachOther", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		endpoint := b.webPushSubscription().Endpoint
		const n = 6
		keys := make([]map[string]any, n)
		statuses := make(chan int, n)
		for i := range n {
			other := b.webPushSubscription()
			keys[i] = map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": endpoint,
				"keys": map[string]string{"p256dh": other.P256dh, "auth": other.Auth}}}
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses <- subscribe(b, keys[i], nil).status })
		}
		wg.Wait()
		close(statuses)
		won := 0
		for st := range statuses {
			switch st {
			case http.StatusAccepted:
				won++
			case http.StatusConflict:
			default:
				t.Fatalf("status %d", st)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d registrations of one endpoint with different keys succeeded, want 1", won, n)
		}
	})

	t.Run("WebPushKeysChangeOnlyForTheOwner", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sub, other := b.webPushSubscription(), b.webPushSubscription()
		r := subscribe(b, webPushDevice(sub), nil)
		if r.status != http.StatusAccepted {
			t.Fatalf("owner subscribe: %d %s", r.status, r.body)
		}
		ownerToken := r.json(t)["subscriber_token"].(string)
		victim := owner(b, sub.Endpoint)
		forged := sub
		forged.P256dh, forged.Auth = other.P256dh, other.Auth
		for _, who := range []map[string]any{nil, verified(b, "mallory-"+randomSuffix())} {
			r := subscribe(b, webPushDevice(forged), who)
			if r.status != http.StatusConflict {
				t.Fatalf("other keys for a known endpoint (%v): %d %s", who, r.status, r.body)
			}
		}
		var p256dh string
		if err := b.pool.QueryRow(ctx, `SELECT webpush_p256dh FROM devices WHERE token = $1`, sub.Endpoint).Scan(&p256dh); err != nil {
			t.Fatal(err)
		}
		if p256dh != sub.P256dh || owner(b, sub.Endpoint) != victim {
			t.Fatal("the subscription's keys or owner changed")
		}
		// The owner, with their token, may.
		if r := subscribe(b, webPushDevice(forged), map[string]any{"subscriber_token": ownerToken}); r.status >= 300 {
			t.Fatalf("the owner changing keys: %d %s", r.status, r.body)
		}
		if err := b.pool.QueryRow(ctx, `SELECT webpush_p256dh FROM devices WHERE token = $1`, sub.Endpoint).Scan(&p256dh); err != nil {
			t.Fatal(err)
		}
		if p256dh != other.P256dh {
			t.Fatal("the owner could not change the keys")
		}
	})
}
