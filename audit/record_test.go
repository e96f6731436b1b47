package audit_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type testBundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{ctx: context.Background(), pool: dbtest.Pool(t)}
}

func (b *testBundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecord(t *testing.T) {
	t.Parallel()
	key := audit.APIKey(7, "admin", "ci key", netip.MustParseAddr("192.0.2.9"))

	t.Run("WritesTheEntryAndTheEventWithTheChange", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := "obj-" + t.Name()
		err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			return audit.Record(b.ctx, tx, key, audit.Change{Action: "thing.create", ObjectType: "thing", ObjectID: id,
				Summary: map[string]any{"fields": []string{"name"}}})
		})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := audit.List(b.ctx, b.pool, audit.Filter{ObjectType: "thing", ObjectID: id})
		if err != nil || len(entries) != 1 {
			t.Fatalf("entries: %v %v", entries, err)
		}
		e := entries[0]
		if e.ActorType != audit.KindAPIKey || e.ActorID != 7 || e.ActorLabel != "ci key" || e.Address != "192.0.2.9" || e.Action != "thing.create" {
			t.Fatalf("entry: %+v", e)
		}
		if n := b.count(t, `SELECT count(*) FROM outbox WHERE object_id = $1 AND actor = 'api_key:7'`, id); n != 1 {
			t.Fatalf("%d events", n)
		}
	})

	t.Run("ARolledBackChangeLeavesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := "obj-" + t.Name()
		boom := errors.New("the change failed")
		err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			if err := audit.Record(b.ctx, tx, key, audit.Change{Action: "thing.create", ObjectType: "thing", ObjectID: id}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if n := b.count(t, `SELECT count(*) FROM audit_log WHERE object_id = $1`, id) + b.count(t, `SELECT count(*) FROM outbox WHERE object_id = $1`, id); n != 0 {
			t.Fatalf("%d records of a rolled-back change", n)
		}
	})

	t.Run("SubscribersAndTheSystemLeaveEventsOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := "obj-" + t.Name()
		err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			if err := audit.Record(b.ctx, tx, audit.Subscriber(42, netip.Addr{}), audit.Change{Action: "s.x", ObjectType: "thing", ObjectID: id}); err != nil {
				return err
			}
			return audit.Record(b.ctx, tx, audit.System("reconciler"), audit.Change{Action: "s.y", ObjectType: "thing", ObjectID: id})
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := b.count(t, `SELECT count(*) FROM audit_log WHERE object_id = $1`, id); n != 0 {
			t.Fatalf("%d audit entries", n)
		}
		if n := b.count(t, `SELECT count(*) FROM outbox WHERE object_id = $1`, id); n != 2 {
			t.Fatalf("%d events", n)
		}
	})

	t.Run("NoActorNoChange", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, a := range []audit.Actor{{}, audit.Public(netip.Addr{}), audit.System(""), {Kind: audit.KindUser}} {
			err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
				return audit.Record(b.ctx, tx, a, audit.Change{Action: "thing.create", ObjectType: "thing"})
			})
			if !errors.Is(err, audit.ErrNoActor) {
				t.Fatalf("%+v: %v", a, err)
			}
		}
	})

	t.Run("TheLogIsAppendOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			return audit.Record(b.ctx, tx, key, audit.Change{Action: "thing.create", ObjectType: "thing", ObjectID: "append-only"})
		})
		for _, q := range []string{`UPDATE audit_log SET action = 'forged'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
			if _, err := b.pool.Exec(b.ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})

	t.Run("EventIdsFollowCommitOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// Many writers at once: a reader that always asks for ids after the
		// last it saw must see every event exactly once.
		var wg sync.WaitGroup
		const writers = 8
		for i := range writers {
			wg.Go(func() {
				for j := range 10 {
					err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
						return audit.Record(b.ctx, tx, audit.System("order test"), audit.Change{Action: "order.test",
							ObjectType: "order", ObjectID: t.Name() + string(rune('a'+i)) + string(rune('a'+j))})
					})
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
		var last audit.Position
		seen := 0
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		// Events become readable once every transaction older than theirs
		// has ended, in any schema of the cluster: read until all are seen.
		deadline := time.Now().Add(20 * time.Second)
		for finished := false; !finished || (seen < writers*10 && time.Now().Before(deadline)); {
			select {
			case <-done:
				finished = true
			default:
			}
			events, err := audit.EventsAfter(b.ctx, b.pool, last, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				if !e.Position.After(last) {
					t.Fatalf("event %v after %v", e.Position, last)
				}
				last = e.Position
				if e.Topic == "order.test" && strings.HasPrefix(e.ObjectID, t.Name()) {
					seen++
				}
			}
		}
		if seen != writers*10 {
			t.Fatalf("a reader following ids saw %d of %d events", seen, writers*10)
		}
	})
}
