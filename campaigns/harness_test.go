package campaigns_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/apps/appstest"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

var secret = []byte("campaign-test-secret-campaign-test-secret")

// env is shared by the package's tests: one simulator, one River client.
// The services work through their own pool, whose statements faults can
// break (see faultTracer); tests read and arrange rows through pool.
type env struct {
	pool   *pgxpool.Pool
	sim    *simulator.Server
	store  *apps.Store
	svc    *campaigns.Service
	river  *river.Client[pgx.Tx]
	faults *faultTracer
	optin  *optin.Service
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
		faults := &faultTracer{admin: pool}
		cfg := pool.Config()
		cfg.ConnConfig.Tracer = faults
		svcPool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		svc, optinSvc := newServices(svcPool, store, sim)
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
		if err := client.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		shared = &env{pool: pool, sim: sim, store: store, svc: svc, river: client, faults: faults, optin: optinSvc}
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
	optinSvc := optin.NewService(pool, dbtest.Inserter(pool), store, senders, nil, optin.Config{PublicURL: "http://herald.test", Secret: secret,
		ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour, PendingPurgeAfter: time.Hour}, logger)
	svc := campaigns.NewService(pool, dbtest.Inserter(pool), senders, optinSvc, campaigns.Config{PublicURL: "http://herald.test", Secret: secret, BatchSize: 7}, logger)
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
	app, _ := appstest.Simulated(t, e.pool, e.store, e.sim, "app-"+id)
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
	c, err := b.svc.Create(context.Background(), audit.System("test"), params)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func (b *testBundle) waitStatus(id int64, want campaigns.Status, within time.Duration) *campaigns.Stats {
	b.t.Helper()
	var st *campaigns.Stats
	b.waitFor(within, func() bool {
		var err error
		if st, err = b.svc.Stats(context.Background(), id); err != nil {
			b.t.Fatal(err)
		}
		return st.Status == want
	}, func() string { return fmt.Sprintf("campaign %d is %s, want %s (%+v)", id, st.Status, want, st) })
	b.countersMatch(id)
	return st
}

// countersMatch checks that a campaign's delivery counters equal a recount
// of its delivery rows, read in one statement (one snapshot).
func (b *testBundle) countersMatch(id int64) {
	b.t.Helper()
	var diff []string
	rows, err := b.pool.Query(context.Background(), CountersDiffSQL, id)
	if err == nil {
		diff, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		b.t.Fatalf("recount deliveries of campaign %d: %v", id, err)
	}
	if len(diff) > 0 {
		b.t.Fatalf("campaign %d: counters differ from a recount of its rows: %v", id, diff)
	}
	// The timeline counts each delivery once, at its latest outcome.
	var recount, kept [3]int64
	if err := b.pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FILTER (WHERE status = 'delivered') FROM deliveries WHERE campaign_id = $1),
			(SELECT count(*) FILTER (WHERE status = 'failed') FROM deliveries WHERE campaign_id = $1),
			(SELECT count(*) FILTER (WHERE status = 'unknown') FROM deliveries WHERE campaign_id = $1),
			coalesce(sum(delivered), 0), coalesce(sum(failed), 0), coalesce(sum(unknown), 0)
		FROM campaign_delivery_timeline WHERE campaign_id = $1`, id).
		Scan(&recount[0], &recount[1], &recount[2], &kept[0], &kept[1], &kept[2]); err != nil {
		b.t.Fatalf("recount the timeline of campaign %d: %v", id, err)
	}
	if recount != kept {
		b.t.Fatalf("campaign %d: timeline (delivered, failed, unknown) %v, rows %v", id, kept, recount)
	}
}

// CountersDiffSQL lists, for campaign $1, every (platform, status, outcome)
// whose kept totals differ from a count of the delivery rows.
const CountersDiffSQL = `
	WITH recount AS (
		SELECT platform, status, coalesce(outcome, '') AS outcome, count(*) AS n,
			count(*) FILTER (WHERE resends > 0) AS resent, count(*) FILTER (WHERE retry_at IS NOT NULL) AS waiting
		FROM deliveries WHERE campaign_id = $1 GROUP BY 1, 2, 3
	), kept AS (
		SELECT platform, status, outcome, sum(n) AS n, sum(resent) AS resent, sum(waiting) AS waiting
		FROM campaign_delivery_counts WHERE campaign_id = $1 GROUP BY 1, 2, 3
		HAVING sum(n) <> 0 OR sum(resent) <> 0 OR sum(waiting) <> 0
	)
	SELECT format('%s/%s/%s: rows %s/%s/%s, counters %s/%s/%s', coalesce(r.platform, k.platform),
		coalesce(r.status, k.status), coalesce(r.outcome, k.outcome), r.n, r.resent, r.waiting, k.n, k.resent, k.waiting)
	FROM recount r FULL JOIN kept k USING (platform, status, outcome)
	WHERE r.n IS DISTINCT FROM k.n OR r.resent IS DISTINCT FROM k.resent OR r.waiting IS DISTINCT FROM k.waiting`

// waitFor checks cond each time a River job of the package's client ends a
// run (completed, failed, snoozed, cancelled), and at least every 100 ms for
// what changes without a job event (a simulator receiving while a job
// sends), until it holds or within passes; then it fails with what().
func (b *testBundle) waitFor(within time.Duration, cond func() bool, what func() string) {
	b.t.Helper()
	events, cancel := b.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobSnoozed, river.EventKindJobCancelled)
	defer cancel()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-events:
		case <-tick.C:
		case <-deadline.C:
			b.t.Fatalf("after %v: %s", within, what())
		}
	}
}

func (b *testBundle) deliveryRows(id int64) map[string]int {
	// Devices of open slices (claimed, not yet recorded) count as claimed.
	rows, _ := b.pool.Query(context.Background(), `SELECT status, sum(n)::int FROM (
			SELECT status, count(*) AS n FROM deliveries WHERE campaign_id = $1 GROUP BY 1
			UNION ALL SELECT 'claimed', sum(cardinality(device_ids)) FROM campaign_slices WHERE campaign_id = $1
		) c WHERE n > 0 GROUP BY 1`, id)
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

// exec runs a statement that arranges a test's rows.
func (b *testBundle) exec(sql string, args ...any) {
	b.t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
}

// count runs a query that returns one number.
func (b *testBundle) count(sql string, args ...any) int {
	b.t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// rows runs a query and returns its rows' values.
func (b *testBundle) rows(sql string, args ...any) [][]any {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(), sql, args...)
	if err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// liveJobs counts the campaign's River jobs that are waiting, snoozed,
// retrying or running.
func (b *testBundle) liveJobs(campaignID int64) int {
	return b.count(`SELECT count(*) FROM river_job WHERE (args->>'campaign_id')::bigint = $1
		AND state NOT IN ('completed', 'cancelled', 'discarded')`, campaignID)
}

// total counts what the simulator received for members.
func (b *testBundle) total(ms []member) int {
	n := 0
	for _, m := range ms {
		n += len(b.received(m))
	}
	return n
}

// firstAfter is the earliest moment after t that one of members received
// something.
func (b *testBundle) firstAfter(ms []member, t time.Time) time.Time {
	var first time.Time
	for _, m := range ms {
		for _, r := range b.received(m) {
			if r.At.After(t) && (first.IsZero() || r.At.Before(first)) {
				first = r.At
			}
		}
	}
	return first
}

// faultTracer breaks chosen statements of the services' real connections:
// a statement whose SQL contains a rule's text and whose arguments include
// the rule's value (a campaign id, a list slug) runs with an already cancelled context ("cancel":
// the job's context ended there) or on a backend terminated just before it
// ("terminate": pg_terminate_backend, as a failover or an admin would).
type faultTracer struct {
	admin *pgxpool.Pool
	mu    sync.Mutex
	rules []*faultRule
}

type faultRule struct {
	contains string
	arg      any
	kind     string // "cancel" or "terminate"
	times    int
	hit      chan struct{} // closed at the first hit
}

// add breaks the next times statements that match; the returned channel
// closes when the first one is broken.
func (f *faultTracer) add(arg any, contains, kind string, times int) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &faultRule{contains: contains, arg: arg, kind: kind, times: times, hit: make(chan struct{})}
	f.rules = append(f.rules, r)
	return r.hit
}

func (f *faultTracer) match(data pgx.TraceQueryStartData) *faultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if r.times == 0 || !strings.Contains(data.SQL, r.contains) {
			continue
		}
		for _, a := range data.Args {
			if a == r.arg {
				r.times--
				select {
				case <-r.hit:
				default:
					close(r.hit)
				}
				return r
			}
		}
	}
	return nil
}

// TraceQueryStart implements pgx.QueryTracer.
func (f *faultTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r := f.match(data)
	if r == nil {
		return ctx
	}
	if r.kind == "terminate" {
		if _, err := f.admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, conn.PgConn().PID()); err != nil {
			panic(err)
		}
		return ctx
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	return cancelled
}

// TraceQueryEnd implements pgx.QueryTracer.
func (f *faultTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
