package conversations_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/apps/appstest"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

var secret = []byte("conversations-test-secret-conversations-test")

// env is shared by the package's tests: one simulator, one River client
// working the conversations queue.
type env struct {
	pool  *pgxpool.Pool
	sim   *simulator.Server
	store *apps.Store
	svc   *conversations.Service
	optin *optin.Service
	river *river.Client[pgx.Tx]
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
		senders := apps.NewSenders(pool, store, delivery.Options{RootCAs: sim.CertPool()}, logger)
		optinSvc := optin.NewService(pool, dbtest.Inserter(pool), store, senders, nil, optin.Config{PublicURL: "http://herald.test",
			Secret: secret, ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour, PendingPurgeAfter: time.Hour}, logger)
		svc := conversations.NewService(pool, dbtest.Inserter(pool), senders, conversations.Config{Secret: secret,
			PublicURL: "http://herald.test", Consent: optinSvc}, logger)
		workers := river.NewWorkers()
		svc.AddWorkers(workers)
		client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Logger: logger,
			FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 20 * time.Millisecond, Queues: conversations.Queues(4)})
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		shared = &env{pool: pool, sim: sim, store: store, svc: svc, optin: optinSvc, river: client}
	})
	if shared == nil {
		t.Fatal("environment did not start")
	}
	return shared
}

type testBundle struct {
	*env
	t      *testing.T
	ctx    context.Context
	app    *apps.App
	list   *subscribers.List
	system audit.Actor
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
	l, err := subscribers.CreateList(ctx, e.pool, subscribers.ListParams{Slug: &slug, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{env: e, t: t, ctx: ctx, app: app, list: l, system: audit.System("test")}
}

// member is a confirmed subscriber of the bundle's list with one APNs
// device.
type member struct {
	id     int64
	device subscribers.Device
}

func (b *testBundle) member() member {
	b.t.Helper()
	sub, err := subscribers.Create(b.ctx, b.pool, subscribers.SubscriberParams{})
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := subscribers.SetConfirmed(b.ctx, b.pool, b.list.ID, sub.ID); err != nil {
		b.t.Fatal(err)
	}
	d, err := subscribers.RegisterDevice(b.ctx, b.pool, sub.ID, b.app.ID, subscribers.DeviceParams{Platform: delivery.PlatformAPNs,
		Token: b.sim.NewAPNsToken(false), APNsTopic: "com.example.app"})
	if err != nil {
		b.t.Fatal(err)
	}
	return member{id: sub.ID, device: *d}
}

// agent makes an active user of role with a name, available with capacity.
func (b *testBundle) agent(role access.Role, available bool, capacity int) conversations.Author {
	b.t.Helper()
	name := "Agent " + randomID()
	var id int64
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO users (email, name, role, available, capacity) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		randomID()+"@example.com", name, role, available, capacity).Scan(&id); err != nil {
		b.t.Fatal(err)
	}
	return conversations.Author{UserID: id, Name: name}
}

func (b *testBundle) team(auto bool, members ...conversations.Author) int64 {
	b.t.Helper()
	var id int64
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO teams (name, auto_assign) VALUES ($1, $2) RETURNING id`, "Team "+randomID(), auto).Scan(&id); err != nil {
		b.t.Fatal(err)
	}
	for _, m := range members {
		if _, err := b.pool.Exec(b.ctx, `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)`, id, m.UserID); err != nil {
			b.t.Fatal(err)
		}
	}
	return id
}

func (b *testBundle) send(m member, body string) *conversations.Message {
	b.t.Helper()
	msg, _, err := b.svc.Send(b.ctx, audit.Subscriber(0, netip.Addr{}), m.id, b.app.ID, conversations.SendRequest{Body: body})
	if err != nil {
		b.t.Fatal(err)
	}
	return msg
}

func (b *testBundle) count(q string, args ...any) int {
	b.t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, q, args...).Scan(&n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

// waitFor checks cond each time a River job ends a run, and every 50 ms,
// until it holds or within passes.
func (b *testBundle) waitFor(within time.Duration, cond func() bool, what func() string) {
	b.t.Helper()
	events, cancel := b.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobSnoozed, river.EventKindJobCancelled)
	defer cancel()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
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

func (b *testBundle) deliveryStatus(messageID int64) string {
	var s string
	err := b.pool.QueryRow(b.ctx, `SELECT coalesce(string_agg(status, ',' ORDER BY device_id), '') FROM message_deliveries WHERE message_id = $1`, messageID).Scan(&s)
	if err != nil {
		return fmt.Sprint(err)
	}
	return s
}
