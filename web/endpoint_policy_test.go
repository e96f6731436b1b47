package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/web"
)

// TestWebPushEndpointPolicy subscribes with endpoints that point into
// Herald's own network through a Herald configured as `serve` configures
// it: each is refused with the field, and nothing is stored.
func TestWebPushEndpointPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy := &delivery.EndpointPolicy{} // the push services, public addresses only
	senders := apps.NewSenders(b.pool, b.store, delivery.Options{WebPush: policy}, logger)
	svc := optin.NewService(b.pool, dbtest.Inserter(b.pool), b.store, senders, nil, optin.Config{PublicURL: b.cfg.PublicURL, Secret: b.cfg.Secret,
		ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour, PendingPurgeAfter: time.Hour,
		WebPush: policy}, logger)
	camp := campaigns.NewService(b.pool, dbtest.Inserter(b.pool), senders, svc, campaigns.Config{PublicURL: b.cfg.PublicURL, Secret: b.cfg.Secret}, logger)
	app := web.New(web.Deps{Config: b.cfg, Pool: b.pool, River: b.river, OptIn: svc, Campaigns: camp, Apps: b.store, Users: b.users, Subscribers: subscribers.NewService(b.pool, dbtest.Inserter(b.pool), nil), Logger: logger,
		Conversations: b.conv, Hub: b.hub, Webhooks: b.hooks,
		Registry: prometheus.NewRegistry(), Ready: func(ctx context.Context) error { return b.pool.Ping(ctx) }})
	keys := b.webPushSubscription()
	subscribe := func(endpoint string) *response {
		body := map[string]any{"app": b.appSlug, "list": b.list, "device": map[string]any{"platform": "webpush",
			"subscription": map[string]any{"endpoint": endpoint, "keys": map[string]string{"p256dh": keys.P256dh, "auth": keys.Auth}}}}
		return b.doOn(app, http.MethodPost, "/public/v1/subscribe", "", "application/json", mustJSON(t, body))
	}
	for _, endpoint := range []string{
		"https://127.0.0.1:5432/", "https://localhost:8080/push", "https://[::ffff:127.0.0.1]:8080/x", "https://10.0.0.7/push",
		"https://169.254.169.254/latest/meta-data/", "https://[fd12::1]/x", "https://evil.example.com/push",
		"https://fcm.googleapis.com.evil.example.com/push", "https://" + b.cfg.Listen + "/api/v1/lists",
	} {
		r := subscribe(endpoint)
		if r.status != http.StatusUnprocessableEntity || r.json(t)["field"] != "device.subscription.endpoint" {
			t.Errorf("%s: %d %s", endpoint, r.status, r.body)
		}
		var n int
		if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM devices WHERE token = $1`, endpoint).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s was stored (%d, %v)", endpoint, n, err)
		}
	}
	if r := subscribe("https://fcm.googleapis.com/fcm/send/" + randomSuffix()); r.status != http.StatusAccepted {
		t.Fatalf("a push service's endpoint: %d %s", r.status, r.body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
