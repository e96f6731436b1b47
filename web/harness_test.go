package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/apps/appstest"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/live"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/web"
	"github.com/herald-im/herald/webhooks"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var testSecret = []byte("test-secret-test-secret-test-secret-0123")

// testMetricsToken is what /metrics asks of the tests' requests, which come
// through app.Test and not from the loopback interface.
const testMetricsToken = "test-metrics-token-0123"

// env is the whole of Herald, shared by the package's tests: one schema, one
// simulator, one River client. Tests isolate themselves by making their own
// app, lists and keys.
type env struct {
	pool  *pgxpool.Pool
	sim   *simulator.Server
	store *apps.Store
	optin *optin.Service
	river *river.Client[pgx.Tx]
	users *users.Service
	app   *fiber.App
	cfg   *config.Config
	conv  *conversations.Service
	hub   *live.Hub
	hooks *webhooks.Service
}

var (
	envOnce sync.Once
	shared  *env
)

func getEnv(t *testing.T) *env {
	t.Helper()
	envOnce.Do(func() { shared = newEnv(t) })
	if shared == nil {
		t.Fatal("environment failed to start")
	}
	return shared
}

func newEnv(t *testing.T) *env {
	pool := dbtest.Pool(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, err := simulator.Start(simulator.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		switch k {
		case "HERALD_SECRET":
			return string(testSecret), true
		case "HERALD_PUBLIC_URL":
			return "http://herald.test", true
		case "HERALD_RATE_LIMIT_IP":
			return "100000", true
		case "HERALD_MAX_BODY_BYTES":
			return "8192", true
		case "HERALD_TRUST_PROXY":
			return "true", true
		case "HERALD_METRICS_TOKEN":
			return testMetricsToken, true
		}
		return "", false
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	store := apps.NewStore(cfg.Secret)
	senders := apps.NewSenders(pool, store, delivery.Options{RootCAs: sim.CertPool()}, logger)
	svc := optin.NewService(pool, dbtest.Inserter(pool), store, senders, nil, optin.Config{
		PublicURL: cfg.PublicURL, Secret: cfg.Secret, ConfirmTokenTTL: cfg.ConfirmTokenTTL,
		UnsubscribeTokenTTL: cfg.UnsubscribeTokenTTL, SubscriberTokenTTL: cfg.SubscriberTokenTTL,
		PendingPurgeAfter: cfg.PendingPurgeAfter,
	}, logger)
	campaignSvc := campaigns.NewService(pool, dbtest.Inserter(pool), senders, svc, campaigns.Config{PublicURL: cfg.PublicURL, Secret: cfg.Secret, BatchSize: 50}, logger)
	notifier := audit.NewNotifier(pool, time.Millisecond, logger)
	go notifier.Run(context.Background())
	convSvc := conversations.NewService(pool, dbtest.Inserter(pool), senders, conversations.Config{Secret: cfg.Secret,
		PublicURL: cfg.PublicURL, Notifier: notifier, Consent: svc}, logger)
	hub := live.NewHub(pool, live.Config{Channels: []string{conversations.PresenceChannel}, PollInterval: 200 * time.Millisecond}, logger)
	go hub.Run(context.Background())
	hooks := webhooks.NewService(pool, dbtest.Inserter(pool), webhooks.Config{Secret: cfg.Secret, AllowPrivate: true}, logger)
	workers := river.NewWorkers()
	convSvc.AddWorkers(workers)
	hooks.AddWorkers(workers)
	go hooks.RunDispatcher(context.Background(), 200*time.Millisecond)
	svc.AddWorkers(workers, nil)
	campaignSvc.AddWorkers(workers, nil)
	river.AddWorker(workers, &subscribers.ImportWorker{Pool: pool, Logger: logger})
	queues := map[string]river.QueueConfig{
		river.QueueDefault: {MaxWorkers: 5}, optin.QueueOptIn: {MaxWorkers: 20}, subscribers.QueueImports: {MaxWorkers: 2},
	}
	for name, q := range campaigns.Queues(4) {
		queues[name] = q
	}
	for name, q := range conversations.Queues(4) {
		queues[name] = q
	}
	for name, q := range webhooks.Queues(4) {
		queues[name] = q
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Workers: workers, Logger: logger, FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		Queues: queues,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	userSvc := users.NewService(pool, users.Config{Secret: cfg.Secret, PublicURL: cfg.PublicURL,
		Password: users.Params{Memory: 1024, Time: 1, Threads: 1}}, logger)
	app := web.New(web.Deps{
		Config: cfg, Pool: pool, River: client, OptIn: svc, Campaigns: campaignSvc, Apps: store, Senders: senders, Subscribers: subscribers.NewService(pool, dbtest.Inserter(pool), logger), Users: userSvc, Logger: logger,
		Conversations: convSvc, Hub: hub, Webhooks: hooks,
		Registry: prometheus.NewRegistry(), Ready: func(ctx context.Context) error { return pool.Ping(ctx) },
	})
	return &env{pool: pool, sim: sim, store: store, optin: svc, river: client, users: userSvc, app: app, cfg: cfg, conv: convSvc, hub: hub, hooks: hooks}
}

// testBundle is one test's own app, list and API keys.
type testBundle struct {
	*env
	t        *testing.T
	appSlug  string
	appID    int64
	vapidKey string
	identity string // the app's identity secret
	list     string
	admin    string // API keys by role
	marketer string
	agent    string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	e := getEnv(t)
	ctx := context.Background()
	suffix := randomSuffix()
	app, sec := appstest.Simulated(t, e.pool, e.store, e.sim, "app-"+suffix)
	b := &testBundle{env: e, t: t, appSlug: app.Slug, appID: app.ID, vapidKey: app.VAPIDPublicKey,
		identity: sec.IdentitySecret, list: "list-" + suffix}
	for _, r := range []struct {
		role apikeys.Role
		dst  *string
	}{{apikeys.RoleAdmin, &b.admin}, {apikeys.RoleMarketer, &b.marketer}, {apikeys.RoleAgent, &b.agent}} {
		plain, _, err := apikeys.Create(ctx, e.pool, "test "+string(r.role), r.role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		*r.dst = plain
	}
	name, consent := "Test list "+suffix, "I agree to receive test messages."
	if _, err := subscribers.CreateList(ctx, e.pool, subscribers.ListParams{Slug: &b.list, Name: &name, ConsentText: &consent}); err != nil {
		t.Fatal(err)
	}
	return b
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request through the fiber app, as the network would.
func (b *testBundle) do(method, path, key, contentType string, body []byte) *response {
	b.t.Helper()
	return b.doOn(b.app, method, path, key, contentType, body)
}

// doOn sends a request through another instance of the fiber app.
func (b *testBundle) doOn(app *fiber.App, method, path, key, contentType string, body []byte) *response {
	b.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("User-Agent", "herald-test/1.0")
	req.Header.Set("X-Forwarded-For", "198.51.100.23")
	resp, err := app.Test(req, 30_000)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: out}
}

func (b *testBundle) postJSON(path, key string, v any) *response {
	b.t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(http.MethodPost, path, key, "application/json", body)
}

func (b *testBundle) webPushSubscription() simulator.WebPushSubscription {
	return b.sim.NewWebPushSubscription(b.vapidKey)
}

func webPushDevice(s simulator.WebPushSubscription) map[string]any {
	return map[string]any{"platform": "webpush", "subscription": map[string]any{
		"endpoint": s.Endpoint, "keys": map[string]string{"p256dh": s.P256dh, "auth": s.Auth}}}
}

// waitReceived waits until a device has received n messages.
func (b *testBundle) waitReceived(platform, token string, n int) []simulator.Received {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := b.sim.Received(platform, token)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s device received %d messages, want %d", platform, len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pathOf strips the public URL from a link in a message.
func (b *testBundle) pathOf(link string) string {
	b.t.Helper()
	p, ok := strings.CutPrefix(link, b.cfg.PublicURL)
	if !ok {
		b.t.Fatalf("link %q is not under %s", link, b.cfg.PublicURL)
	}
	return p
}

func (b *testBundle) membership(subscriberID int64) subscribers.MembershipStatus {
	b.t.Helper()
	l, err := subscribers.GetList(context.Background(), b.pool, b.list)
	if err != nil {
		b.t.Fatal(err)
	}
	s, err := subscribers.MembershipStatusOf(context.Background(), b.pool, l.ID, subscriberID)
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}
