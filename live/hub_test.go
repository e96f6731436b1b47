package live_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/live"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type testBundle struct {
	ctx      context.Context
	hub      *live.Hub
	notifier *audit.Notifier
	record   func(t *testing.T, id string)
}

func setup(t *testing.T, buffer int) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A long poll: events must arrive by the notification.
	hub := live.NewHub(pool, live.Config{PollInterval: time.Minute, Buffer: buffer}, logger)
	go hub.Run(ctx)
	notifier := audit.NewNotifier(pool, time.Millisecond, logger)
	go notifier.Run(ctx)
	b := &testBundle{ctx: ctx, hub: hub, notifier: notifier}
	b.record = func(t *testing.T, id string) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return audit.Record(ctx, tx, audit.System("hub test"), audit.Change{Action: "hub.test", ObjectType: "hub", ObjectID: id})
		}); err != nil {
			t.Fatal(err)
		}
		notifier.Poke()
	}
	return b
}

func mine(prefix string) live.Filter {
	return func(m *live.Message) bool {
		return m.Event != nil && m.Event.Topic == "hub.test" && len(m.Event.ObjectID) > len(prefix) && m.Event.ObjectID[:len(prefix)] == prefix
	}
}

func TestHub(t *testing.T) {
	t.Parallel()

	t.Run("ANotifiedEventReachesTheStreamAndTheBacklogReplaysInOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 0)
		prefix := t.Name()
		stream, start, err := b.hub.Subscribe(b.ctx, mine(prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		for _, id := range []string{"-1", "-2", "-3"} {
			b.record(t, prefix+id)
		}
		var last audit.Position
		for _, want := range []string{"-1", "-2", "-3"} {
			select {
			case m := <-stream.C:
				if m.Event.ObjectID != prefix+want {
					t.Fatalf("got %s, want %s", m.Event.ObjectID, prefix+want)
				}
				last = m.Event.Position
			case <-time.After(15 * time.Second):
				t.Fatal("no event within 15 s: the notification did not wake the hub")
			}
		}
		events, read, more, err := b.hub.Backlog(b.ctx, start, last, mine(prefix), 100)
		if err != nil || more || read != last || len(events) != 3 || events[0].ObjectID != prefix+"-1" || events[2].ObjectID != prefix+"-3" {
			t.Fatalf("backlog: %d events, read to %v (want %v), more %v, %v", len(events), read, last, more, err)
		}
	})

	t.Run("AStreamThatFallsBehindIsClosed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		prefix := t.Name()
		stream, _, err := b.hub.Subscribe(b.ctx, mine(prefix))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"-1", "-2", "-3"} {
			b.record(t, prefix+id)
		}
		// The client reads nothing until the hub gave up on it.
		deadline := time.After(15 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		overruns := func() float64 {
			var m dto.Metric
			b.hub.Collectors()[1].(prometheus.Counter).Write(&m)
			return m.GetCounter().GetValue()
		}
		for overruns() == 0 {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatal("a stream that could not keep up stayed open")
			}
		}
		n := 0
		for range stream.C {
			n++
		}
		if n != 1 {
			t.Fatalf("the closed stream held %d messages, want its one buffered", n)
		}
	})
}
