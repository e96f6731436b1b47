package campaigns_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

var secret = []byte("campaign-test-secret-campaign-test-secret")

// env is shared by the package's tests: one simulator, one River client.
type env struct {
	pool  *pgxpool.Pool
	sim   *simulator.Server
	store *apps.Store
	svc   *campaigns.Service
}

var (
	envOnce sync.Once
	shared  *env
)

func getEnv(t *testing.T) *env {
	t.Helper()
	envOnce.Do(func() {
		pool := dbtest.Pool(t)
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		sim, err := simulator.Start(simulator.Config{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		store := apps.NewStore(secret)
		svc, optinSvc := newServices(pool, store, sim)
		workers := river.NewWorkers()
		svc.AddWorkers(workers, nil)
		optinSvc.AddWorkers(workers, nil)
		client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
			Workers: workers, Logger: logger, FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
			Queues: campaignQueues(optin.QueueOptIn),
		})
		if err != nil {
			t.Fatal(err)
		}
		svc.SetRiver(client)
		optinSvc.SetRiver(client)
		if err := client.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		shared = &env{pool: pool, sim: sim, store: store, svc: svc}
	})
	if shared == nil {
		t.Fatal("environment did not start")
	}
	return shared
}

// newServices makes the campaign and opt-in services over pool, sending to
// the simulator.
func newServices(pool *pgxpool.Pool, store *apps.Store, sim *simulator.Server) (*campaigns.Service, *optin.Service) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	senders := apps.NewSenders(pool, store, delivery.Options{RootCAs: sim.CertPool()}, logger)
	optinSvc := optin.NewService(pool, store, senders, nil, optin.Config{PublicURL: "http://herald.test", Secret: secret,
		ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour, PendingPurgeAfter: time.Hour}, logger)
	svc := campaigns.NewService(pool, senders, optinSvc, campaigns.Config{PublicURL: "http://herald.test", Secret: secret, BatchSize: 7}, logger)
	return svc, optinSvc
}

type testBundle struct {
	*env
	t     *testing.T
	app   *apps.App
	list  string
	vapid string
}

func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	e := getEnv(t)
	ctx := context.Background()
	id := randomID()
	app, err := e.store.Create(ctx, e.pool, "app-"+id, "App", "mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := e.store.Secrets(ctx, e.pool, app.ID)
	p8, err := e.sim.NewAPNsKey("T"+id[:9], "K"+id[:9])
	if err != nil {
		t.Fatal(err)
	}
	sec.Credentials.APNs = &delivery.APNsCredentials{KeyP8: p8, KeyID: "K" + id[:9], TeamID: "T" + id[:9], Topic: "com.example.app", Endpoint: e.sim.URL}
	sec.Credentials.FCM = &delivery.FCMCredentials{ProjectID: e.sim.FCMProject, Endpoint: e.sim.URL, AccessToken: e.sim.FCMAccessToken}
	if err := e.store.SetSecrets(ctx, e.pool, app.ID, sec); err != nil {
		t.Fatal(err)
	}
	slug, name := "list-"+id, "News "+id
	if _, err := subscribers.CreateList(ctx, e.pool, subscribers.ListParams{Slug: &slug, Name: &name}); err != nil {
		t.Fatal(err)
	}
	return &testBundle{env: e, t: t, app: app, list: slug, vapid: app.VAPIDPublicKey}
}

// member is a confirmed subscriber with one device.
type member struct {
	subscriberID int64
	device       subscribers.Device
}

// addMember makes a confirmed subscriber of the bundle's list with one device
// on platform, and attributes.
func (b *testBundle) addMember(platform delivery.Platform, locale, tz string, attrs string) member {
	b.t.Helper()
	ctx := context.Background()
	p := subscribers.SubscriberParams{Locale: &locale, Timezone: &tz}
	if attrs != "" {
		p.Attributes = []byte(attrs)
	}
	sub, err := subscribers.Create(ctx, b.pool, p)
	if err != nil {
		b.t.Fatal(err)
	}
	l, _ := subscribers.GetList(ctx, b.pool, b.list)
	if _, err := subscribers.SetConfirmed(ctx, b.pool, l.ID, sub.ID); err != nil {
		b.t.Fatal(err)
	}
	dp := subscribers.DeviceParams{Platform: platform}
	switch platform {
	case delivery.PlatformAPNs:
		dp.Token, dp.APNsTopic = b.sim.NewAPNsToken(false), "com.example.app"
	case delivery.PlatformFCM:
		dp.Token = b.sim.NewFCMToken()
	case delivery.PlatformWebPush:
		s := b.sim.NewWebPushSubscription(b.vapid)
		dp.Token, dp.P256dh, dp.Auth = s.Endpoint, s.P256dh, s.Auth
	}
	d, err := subscribers.RegisterDevice(ctx, b.pool, sub.ID, b.app.ID, dp)
	if err != nil {
		b.t.Fatal(err)
	}
	return member{subscriberID: sub.ID, device: *d}
}

func (b *testBundle) received(m member) []simulator.Received {
	return b.sim.Received(string(m.device.Platform), m.device.Token)
}

func (b *testBundle) create(params campaigns.Params) *campaigns.Campaign {
	b.t.Helper()
	if params.App == nil {
		params.App = &b.app.Slug
	}
	if params.Name == nil {
		n := "Campaign " + randomID()
		params.Name = &n
	}
	if params.Content == nil {
		params.Content = &campaigns.Content{Title: "Spring sale", Body: "20% off", URL: "https://shop.example.com/sale",
			Actions: []campaigns.Action{{Label: "Stop these", Type: "unsubscribe"}}}
	}
	if params.Audience == nil {
		params.Audience = &campaigns.Audience{Lists: []string{b.list}}
	}
	c, err := b.svc.Create(context.Background(), params)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func (b *testBundle) waitStatus(id int64, want campaigns.Status, within time.Duration) *campaigns.Stats {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := b.svc.Stats(context.Background(), id)
		if err != nil {
			b.t.Fatal(err)
		}
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("campaign %d is %s after %v, want %s (%+v)", id, st.Status, within, want, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *testBundle) deliveryRows(id int64) map[string]int {
	rows, _ := b.pool.Query(context.Background(), `SELECT status, count(*) FROM deliveries WHERE campaign_id = $1 GROUP BY 1`, id)
	out, _ := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		s string
		n int
	}, error) {
		var v struct {
			s string
			n int
		}
		err := r.Scan(&v.s, &v.n)
		return v, err
	})
	m := map[string]int{}
	for _, v := range out {
		m[v.s] = v.n
	}
	return m
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
