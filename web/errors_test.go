package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/web"
)

// TestDatabaseFailuresAreNotHidden checks that a handler whose lookup fails
// answers 500 (and logs it), not a 404 or 422 that blames the request: "no
// such list" when the database is down sends people and operators looking
// for the wrong problem.
func TestDatabaseFailuresAreNotHidden(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// failingApp is Herald over a pool in which statements containing match
	// fail; the opt-in service keeps the working pool.
	failingApp := func(t *testing.T, b *testBundle, match string) *fiber.App {
		t.Helper()
		pool := dbtest.FailingPool(t, match)
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		senders := apps.NewSenders(pool, b.store, delivery.Options{RootCAs: b.sim.CertPool()}, logger)
		camp := campaigns.NewService(pool, dbtest.Inserter(pool), senders, b.optin, campaigns.Config{PublicURL: b.cfg.PublicURL, Secret: b.cfg.Secret, BatchSize: 50}, logger)
		return web.New(web.Deps{Config: b.cfg, Pool: pool, River: b.river, OptIn: b.optin, Campaigns: camp, Apps: b.store, Users: b.users, Subscribers: subscribers.NewService(pool, dbtest.Inserter(pool), nil),
			Conversations: conversations.NewService(pool, dbtest.Inserter(pool), senders, conversations.Config{Secret: b.cfg.Secret}, logger), Hub: b.hub, Webhooks: b.hooks,
			Logger: logger, Registry: prometheus.NewRegistry(), Ready: func(ctx context.Context) error { return pool.Ping(ctx) }})
	}

	requireInternalError := func(t *testing.T, r *response) {
		t.Helper()
		if r.status != http.StatusInternalServerError {
			t.Fatalf("answered %d, want 500: %s", r.status, r.body)
		}
	}

	t.Run("PublicUnsubscribeFromAList", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "device": webPushDevice(b.webPushSubscription())})
		if res.status != http.StatusAccepted {
			t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
		body, err := json.Marshal(map[string]any{"subscriber_token": res.json(t)["subscriber_token"], "list": b.list})
		if err != nil {
			t.Fatal(err)
		}
		app := failingApp(t, b, "FROM lists WHERE slug")
		requireInternalError(t, b.doOn(app, http.MethodPost, "/public/v1/unsubscribe", "", "application/json", body))
	})

	t.Run("OptInPageApp", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		app := failingApp(t, b, "FROM apps WHERE slug")
		requireInternalError(t, b.doOn(app, http.MethodGet, "/l/"+b.list+"?app="+b.appSlug, "", "", nil))
	})

	t.Run("PreferencesLeavingAList", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sub, err := subscribers.Create(ctx, b.pool, subscribers.SubscriberParams{})
		if err != nil {
			t.Fatal(err)
		}
		app := failingApp(t, b, "FROM lists WHERE slug")
		r := b.doOn(app, http.MethodPost, b.pathOf(b.optin.PreferencesURL(sub.ID)), "", "application/x-www-form-urlencoded",
			[]byte("list="+url.QueryEscape(b.list)))
		requireInternalError(t, r)
	})

	t.Run("AdminSubscribersOfAList", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		app := failingApp(t, b, "FROM lists WHERE slug")
		requireInternalError(t, b.doOn(app, http.MethodGet, "/api/v1/subscribers?list="+b.list, b.admin, "", nil))
	})

	t.Run("CampaignActionTap", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, _, data := b.testSendReply()
		body, err := json.Marshal(map[string]string{"token": data["reply_token"], "action": "a0"})
		if err != nil {
			t.Fatal(err)
		}
		app := failingApp(t, b, "FROM campaigns")
		requireInternalError(t, b.doOn(app, http.MethodPost, "/public/v1/campaign-actions", "", "application/json", body))
	})

	t.Run("Click", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, _, data := b.testSendReply()
		link, ok := strings.CutPrefix(data["url"], b.cfg.PublicURL)
		if !ok {
			t.Fatal("the test send has no click link")
		}
		app := failingApp(t, b, "FROM campaigns")
		requireInternalError(t, b.doOn(app, http.MethodGet, link, "", "", nil))
	})
}

// testSendReply test-sends a draft campaign with a reply button to a new
// subscriber's FCM device and returns the campaign, the subscriber and the
// message's data.
func (b *testBundle) testSendReply() (campaignID, subscriberID int64, data map[string]string) {
	b.t.Helper()
	ctx := context.Background()
	sub, err := subscribers.Create(ctx, b.pool, subscribers.SubscriberParams{})
	if err != nil {
		b.t.Fatal(err)
	}
	token := b.sim.NewFCMToken()
	if _, err := subscribers.RegisterDevice(ctx, b.pool, sub.ID, b.appID, subscribers.DeviceParams{Platform: delivery.PlatformFCM, Token: token}); err != nil {
		b.t.Fatal(err)
	}
	// Test sends reach only people who may receive marketing.
	l, err := subscribers.GetList(ctx, b.pool, b.list)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := subscribers.SetConfirmed(ctx, b.pool, l.ID, sub.ID); err != nil {
		b.t.Fatal(err)
	}
	create := b.postJSON("/api/v1/campaigns", b.marketer, map[string]any{
		"app": b.appSlug, "name": "Coffee",
		"content": map[string]any{"title": "Coffee?", "url": "https://shop.example.com/coffee",
			"actions": []map[string]any{{"label": "Yes", "type": "reply", "reply_text": "Yes please"}}},
		"audience": map[string]any{"lists": []string{b.list}},
	})
	if create.status != http.StatusCreated {
		b.t.Fatalf("create: %d %s", create.status, create.body)
	}
	id := int64(create.json(b.t)["id"].(float64))
	if r := b.postJSON(fmt.Sprintf("/api/v1/campaigns/%d/test-send", id), b.marketer, map[string]any{"subscriber_ids": []int64{sub.ID}}); r.status != http.StatusOK {
		b.t.Fatalf("test send: %d %s", r.status, r.body)
	}
	var msg struct {
		Message struct {
			Data map[string]string `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(b.waitReceived("fcm", token, 1)[0].Payload, &msg); err != nil {
		b.t.Fatal(err)
	}
	return id, sub.ID, msg.Message.Data
}
