// Package retentiontest tests the expiry of delivery records in a schema of
// its own: expiring drops whole partitions, which would pull rows from under
// the campaigns package's other tests, running beside it in theirs.
package retentiontest

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"sync/atomic"
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
	"github.com/herald-im/herald/demo"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var secret = []byte("retention-test-secret-retention-test-secret")

type testBundle struct {
	pool  *pgxpool.Pool
	svc   *campaigns.Service
	river *river.Client[pgx.Tx]
	clock *atomic.Pointer[time.Time]
	app   *apps.App
	list  string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, err := simulator.Start(simulator.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	store := apps.NewStore(secret)
	clock := &atomic.Pointer[time.Time]{}
	now := time.Now()
	clock.Store(&now)
	senders := apps.NewSenders(pool, store, delivery.Options{RootCAs: sim.CertPool()}, logger)
	optinSvc := optin.NewService(pool, dbtest.Inserter(pool), store, senders, nil, optin.Config{PublicURL: "http://herald.test",
		Secret: secret, ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour,
		PendingPurgeAfter: time.Hour}, logger)
	svc := campaigns.NewService(pool, dbtest.Inserter(pool), senders, optinSvc, campaigns.Config{PublicURL: "http://herald.test",
		Secret: secret, BatchSize: 50, DeliveryRetention: 30 * 24 * time.Hour, Now: func() time.Time { return *clock.Load() }}, logger)
	workers := river.NewWorkers()
	svc.AddWorkers(workers, nil)
	optinSvc.AddWorkers(workers, nil)
	queues := campaigns.Queues(4)
	queues[optin.QueueOptIn] = river.QueueConfig{MaxWorkers: 2}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Logger: logger,
		FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond, Queues: queues})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Stop(context.Background()) })

	app, _ := appstest.Simulated(t, pool, store, sim, "retention")
	slug, name := "retention", "Retention"
	l, err := subscribers.CreateList(ctx, pool, subscribers.ListParams{Slug: &slug, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return demo.Seed(ctx, tx, app.ID, l.ID, 40, "retention", sim, delivery.PlatformAPNs, delivery.PlatformFCM)
	}); err != nil {
		t.Fatal(err)
	}
	return &testBundle{pool: pool, svc: svc, river: client, clock: clock, app: app, list: slug}
}

func (b *testBundle) advance(d time.Duration) {
	t := b.clock.Load().Add(d)
	b.clock.Store(&t)
}

func (b *testBundle) create(t *testing.T) *campaigns.Campaign {
	t.Helper()
	name := "Campaign"
	c, err := b.svc.Create(context.Background(), audit.System("test"), campaigns.Params{App: &b.app.Slug, Name: &name,
		Content:  &campaigns.Content{Title: "Hello", Body: "Again"},
		Audience: &campaigns.Audience{Lists: []string{b.list}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// send runs a campaign to its end through River and returns its stats.
func (b *testBundle) send(t *testing.T, c *campaigns.Campaign) *campaigns.Stats {
	t.Helper()
	ctx := context.Background()
	events, cancel := b.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobSnoozed)
	defer cancel()
	if _, err := b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		st, err := b.svc.Stats(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == campaigns.StatusFinished {
			return st
		}
		select {
		case <-events:
		case <-deadline:
			t.Fatalf("campaign %d did not finish: %+v", c.ID, st)
		}
	}
}

func (b *testBundle) partitions(t *testing.T) map[int64]bool {
	t.Helper()
	parts, err := b.svc.DeliveryPartitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]bool{}
	for _, p := range parts {
		if p.Hi-p.Lo != campaigns.DeliveryPartitionWidth {
			t.Fatalf("partition %+v is not %d campaigns wide", p, campaigns.DeliveryPartitionWidth)
		}
		out[p.Lo] = true
	}
	return out
}

func (b *testBundle) rows(t *testing.T, campaignID int64) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE campaign_id = $1`, campaignID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func lo(id int64) int64 {
	return id / campaigns.DeliveryPartitionWidth * campaigns.DeliveryPartitionWidth
}

// TestDeliveryRetention walks a campaign's records through their life: the
// partition is there before the campaign, the records expire whole with it,
// and the campaign's figures do not change when they do. The steps depend on
// each other (one clock, one schema), so they run in order.
func TestDeliveryRetention(t *testing.T) {
	b := setup(t)
	ctx := context.Background()

	old := b.create(t)
	if parts := b.partitions(t); !parts[lo(old.ID)] || !parts[lo(old.ID)+campaigns.DeliveryPartitionWidth] {
		t.Fatalf("after creating campaign %d, partitions %v: want its own and the next one made ahead", old.ID, parts)
	}
	before := b.send(t, old)
	if before.Delivered != 80 || before.ByPlatform["apns"].Delivered != 40 || before.ByPlatform["fcm"].Delivered != 40 {
		t.Fatalf("stats %+v: want 80 delivered, 40 per platform", before)
	}
	if n := b.rows(t, old.ID); n != 80 {
		t.Fatalf("%d delivery rows, want 80", n)
	}

	// A draft in the same range keeps it open however old the rest is.
	draft := b.create(t)
	if lo(draft.ID) != lo(old.ID) {
		t.Skipf("campaign %d fell into the next partition; the test wants two in one", draft.ID)
	}
	// Campaigns in later ranges close the old one.
	if _, err := b.pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('campaigns', 'id'), $1)`,
		lo(old.ID)+2*campaigns.DeliveryPartitionWidth); err != nil {
		t.Fatal(err)
	}
	newer := b.create(t)
	if !b.partitions(t)[lo(newer.ID)+campaigns.DeliveryPartitionWidth] {
		t.Fatalf("no partition made ahead of campaign %d", newer.ID)
	}

	// A closed range without campaigns (the ids were skipped) goes at once.
	b.advance(29 * 24 * time.Hour)
	dropped, err := b.svc.ExpireDeliveries(ctx)
	if err != nil || len(dropped) != 1 || dropped[0].Lo != lo(old.ID)+campaigns.DeliveryPartitionWidth {
		t.Fatalf("within the retention period: dropped %v, %v; want only the empty range after campaign %d's", dropped, err, old.ID)
	}
	b.advance(2 * 24 * time.Hour)
	if dropped, err := b.svc.ExpireDeliveries(ctx); err != nil || len(dropped) != 0 {
		t.Fatalf("with a draft in the range: dropped %v, %v", dropped, err)
	}

	// The draft is sent now: its range stays until it too is old.
	b.send(t, draft)
	b.advance(31 * 24 * time.Hour)
	// The periodic job's worker does the same as the call.
	if err := (&campaigns.RetentionWorker{Service: b.svc}).Work(ctx, &river.Job[campaigns.RetentionArgs]{}); err != nil {
		t.Fatal(err)
	}
	if parts := b.partitions(t); parts[lo(old.ID)] {
		t.Fatalf("partition of campaign %d still there after the retention period: %v", old.ID, parts)
	}
	if n := b.rows(t, old.ID); n != 0 {
		t.Fatalf("%d delivery rows of campaign %d after expiry, want none", n, old.ID)
	}
	var tables int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace`,
		"deliveries_c"+itoa(lo(old.ID))).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("partition table left behind (%d, %v)", tables, err)
	}
	after, err := b.svc.Stats(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("stats changed when the records expired:\nbefore %+v\nafter  %+v", before, after)
	}
	// Nothing newer went.
	if !b.partitions(t)[lo(newer.ID)] {
		t.Fatalf("partition of campaign %d, not expired, was dropped", newer.ID)
	}
	// Again: nothing left to drop, no error.
	if dropped, err := b.svc.ExpireDeliveries(ctx); err != nil || len(dropped) != 0 {
		t.Fatalf("second expiry: dropped %v, %v", dropped, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
