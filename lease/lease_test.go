package lease

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestLease(t *testing.T) {
	t.Parallel()

	t.Run("SanitizesHostname", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{
			"web-1":                          "web-1",
			"Web_01.Example.COM":             "web-01-example-com",
			"--db..primary--":                "db-primary",
			"":                               "herald",
			"!!!":                            "herald",
			"ÿnode":                          "node",
			strings.Repeat("a", 59) + ".bcd": strings.Repeat("a", 59),
			strings.Repeat("x", 80):          strings.Repeat("x", 60),
		} {
			if got := SanitizeHostname(in); got != want {
				t.Errorf("SanitizeHostname(%q) = %q, want %q", in, got, want)
			}
		}
		ids := slotIDs("Web.1")
		if len(ids) != MaxSlots || ids[0] != "web-1" || ids[1] != "web-1-2" || ids[MaxSlots-1] != "web-1-32" {
			t.Errorf("slotIDs = %v", ids)
		}
	})

	t.Run("SlotsPerHost", func(t *testing.T) {
		t.Parallel()
		b := setup(t)

		first := b.acquire(t, Config{Version: "first"})
		second := b.acquire(t, Config{Version: "second"})
		if first.ID() != b.host || second.ID() != b.host+"-2" {
			t.Fatalf("ids = %q, %q; want %q, %q", first.ID(), second.ID(), b.host, b.host+"-2")
		}
		if version, _, ok := b.workerRow(t, second.ID()); !ok || version != "second" {
			t.Fatalf("row of %q: version %q, exists %v", second.ID(), version, ok)
		}

		if err := first.Close(b.ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := b.workerRow(t, b.host); ok {
			t.Fatalf("row of %q left after Close", b.host)
		}
		third := b.acquire(t, Config{Version: "third"})
		if third.ID() != b.host {
			t.Fatalf("after closing the first, got %q; want the lowest free slot %q", third.ID(), b.host)
		}
		if version, _, ok := b.workerRow(t, b.host); !ok || version != "third" {
			t.Fatalf("row of %q: version %q, exists %v", b.host, version, ok)
		}
	})

	t.Run("ConfiguredIDInUse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := "cfg-" + b.host

		holder := b.acquire(t, Config{ID: id})
		if holder.ID() != id {
			t.Fatalf("ID() = %q, want %q", holder.ID(), id)
		}
		_, err := b.tryAcquire(t, Config{ID: id})
		if !errors.Is(err, ErrIDInUse) || !strings.Contains(err.Error(), id) {
			t.Fatalf("second Acquire of %q: %v; want ErrIDInUse naming it", id, err)
		}

		if err := holder.Close(b.ctx); err != nil {
			t.Fatal(err)
		}
		if l := b.acquire(t, Config{ID: id}); l.ID() != id {
			t.Fatalf("after Close: ID() = %q, want %q", l.ID(), id)
		}
	})

	t.Run("NoFreeSlot", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// Another session holds every slot.
		conn, err := b.pool.Acquire(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		defer conn.Exec(b.ctx, `SELECT pg_advisory_unlock_all()`) //nolint:errcheck
		for _, id := range slotIDs(b.host) {
			if _, err := conn.Exec(b.ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema() || '/' || $2))`, LockClassID, id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.tryAcquire(t, Config{}); !errors.Is(err, ErrNoFreeSlot) {
			t.Fatalf("Acquire with every slot held: %v; want ErrNoFreeSlot", err)
		}
	})

	t.Run("CloseIsIdempotent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := b.acquire(t, Config{})
		for range 2 {
			if err := l.Close(b.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, held := b.holderPID(t, l.ID()); held {
			t.Fatal("lock still held after Close")
		}
		if _, _, ok := b.workerRow(t, l.ID()); ok {
			t.Fatal("row left after Close")
		}
	})

	t.Run("HeartbeatAdvances", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := b.acquire(t, Config{PingInterval: 20 * time.Millisecond})
		_, first, _ := b.workerRow(t, l.ID())
		waitFor(t, 10*time.Second, "heartbeat_at to advance", func() bool {
			_, hb, ok := b.workerRow(t, l.ID())
			return ok && hb.After(first)
		})

		// A deleted row is written again.
		if _, err := b.pool.Exec(b.ctx, `DELETE FROM herald_workers WHERE id = $1`, l.ID()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the row to be written again", func() bool {
			_, _, ok := b.workerRow(t, l.ID())
			return ok
		})
	})

	t.Run("RetakesLockWhenAlone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lost := make(chan error, 1)
		l := b.acquire(t, Config{PingInterval: 20 * time.Millisecond, OnLost: func(err error) { lost <- err }})

		old := b.terminateHolder(t, l.ID())
		waitFor(t, 10*time.Second, "the lease to re-take its lock", func() bool {
			pid, held := b.holderPID(t, l.ID())
			return held && pid != old
		})
		if l.ID() != b.host {
			t.Fatalf("ID() = %q after re-take, want %q", l.ID(), b.host)
		}
		if _, err := b.tryAcquire(t, Config{ID: l.ID()}); !errors.Is(err, ErrIDInUse) {
			t.Fatalf("Acquire of the re-taken id: %v; want ErrIDInUse", err)
		}
		_, before, _ := b.workerRow(t, l.ID())
		waitFor(t, 10*time.Second, "heartbeats on the new connection", func() bool {
			_, hb, _ := b.workerRow(t, l.ID())
			return hb.After(before)
		})
		select {
		case err := <-lost:
			t.Fatalf("OnLost called: %v", err)
		default:
		}
		if err := l.Close(b.ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := b.workerRow(t, l.ID()); ok {
			t.Fatal("row left after Close")
		}
	})

	// While the lock connection is down, another process takes the id and
	// keeps it, or takes it, hands jobs back and closes.
	for _, released := range []bool{false, true} {
		name := "OnLostWhenIDTaken"
		if released {
			name += "AndReleased"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			id := "lost-" + b.host

			var calls atomic.Int32
			lost := make(chan error, 2)
			gate := make(chan struct{})
			reached := make(chan struct{}, 1)
			first := b.acquire(t, Config{
				ID: id, Version: "first", PingInterval: 20 * time.Millisecond,
				OnLost: func(err error) { calls.Add(1); lost <- err },
				hooks: &testHooks{beforeRetake: func(ctx context.Context) {
					select {
					case reached <- struct{}{}:
					default:
					}
					select {
					case <-gate:
					case <-ctx.Done():
					}
				}},
			})

			b.terminateHolder(t, id)
			receive(t, reached, 10*time.Second, "the lease to notice its connection is gone")
			b.waitLockFree(t, id)
			second := b.acquire(t, Config{ID: id, Version: "second"})
			if released {
				if err := second.Close(b.ctx); err != nil {
					t.Fatal(err)
				}
			}
			close(gate)

			err := receive(t, lost, 10*time.Second, "OnLost")
			if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), id) {
				t.Fatalf("OnLost(%v); want ErrLost naming %q", err, id)
			}
			if err := first.Close(b.ctx); err != nil {
				t.Fatal(err)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("OnLost called %d times, want once", n)
			}
			if released {
				// The lost lease gave the lock back rather than keep it.
				b.waitLockFree(t, id)
				return
			}
			// The lost lease leaves the new holder's row and lock alone.
			if version, _, ok := b.workerRow(t, id); !ok || version != "second" {
				t.Fatalf("row of %q: version %q, exists %v; want the second holder's", id, version, ok)
			}
			if _, held := b.holderPID(t, id); !held {
				t.Fatal("the second holder's lock is gone")
			}
		})
	}

	t.Run("OnLostWhenLockCannotBeRetaken", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var unreachable atomic.Bool
		lost := make(chan error, 1)
		l := b.acquire(t, Config{
			PingInterval: 20 * time.Millisecond, LostAfter: 300 * time.Millisecond,
			OnLost: func(err error) { lost <- err },
			hooks: &testHooks{connConfig: func(cfg *pgx.ConnConfig) {
				if unreachable.Load() {
					cfg.Host, cfg.Port = "127.0.0.1", 1 // nothing listens
				}
			}},
		})
		unreachable.Store(true)
		b.terminateHolder(t, l.ID())
		err := receive(t, lost, 10*time.Second, "OnLost")
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "within 300ms") {
			t.Fatalf("OnLost(%v); want ErrLost after LostAfter", err)
		}
		if err := l.Close(b.ctx); err != nil {
			t.Fatal(err)
		}
	})
}
