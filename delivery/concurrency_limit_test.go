package delivery

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()

	// saturate holds every slot of l, then releases them all with rtt, a
	// window's worth at a time, for rounds windows.
	saturate := func(t *testing.T, l *concurrencyLimit, rounds int, rtt func(limit int) time.Duration) {
		t.Helper()
		for range rounds {
			n := l.current()
			for range n {
				if err := l.acquire(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			d := rtt(n)
			for range n {
				l.release(d, sampleAnswered)
			}
		}
	}

	t.Run("FixedLimitQueuesInOrderAndGivesUpWithTheContext", func(t *testing.T) {
		t.Parallel()
		l := newFixedLimit(1)
		ctx := context.Background()
		if err := l.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		first, second := make(chan struct{}), make(chan struct{})
		go func() { l.acquire(ctx); close(first) }()
		// The first waiter is in line before the second comes.
		for {
			l.mu.Lock()
			n := len(l.waiters)
			l.mu.Unlock()
			if n == 1 {
				break
			}
			runtime.Gosched()
		}
		go func() { l.acquire(ctx); close(second) }()
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := l.acquire(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("acquire with an ended context: %v", err)
		}
		l.release(0, sampleNone)
		<-first
		select {
		case <-second:
			t.Fatal("the second waiter got the slot before the first gave it back")
		default:
		}
		l.release(0, sampleNone)
		<-second
		l.release(0, sampleNone)
		if l.inflight != 0 || len(l.waiters) != 0 || l.current() != 1 {
			t.Fatalf("after all released: inflight %d, waiters %d, limit %d", l.inflight, len(l.waiters), l.current())
		}
	})

	t.Run("GrowsToTheLatencyOfASlowProvider", func(t *testing.T) {
		t.Parallel()
		l := newAdaptiveLimit()
		// A provider that answers in 20 ms whatever the load: no queue,
		// so the limit grows as long as it is used.
		saturate(t, l, 40, func(int) time.Duration { return 20 * time.Millisecond })
		if got := l.current(); got != adaptiveMaxLimit {
			t.Fatalf("limit %d after 40 full windows without a queue, want %d", got, adaptiveMaxLimit)
		}
	})

	t.Run("FollowsAProviderThatBecameSlowerForGood", func(t *testing.T) {
		t.Parallel()
		l := newAdaptiveLimit()
		saturate(t, l, 40, func(int) time.Duration { return 20 * time.Millisecond })
		// Twice as slow from now on, whatever the load: at first that
		// looks like a queue; the no-queue estimate then catches up and the
		// limit grows back to what 40 ms takes.
		saturate(t, l, 300, func(int) time.Duration { return 40 * time.Millisecond })
		if got := l.current(); got != adaptiveMaxLimit {
			t.Fatalf("limit %d long after the provider settled at 40 ms, want %d", got, adaptiveMaxLimit)
		}
	})

	t.Run("DoesNotGrowWhenNotUsed", func(t *testing.T) {
		t.Parallel()
		l := newAdaptiveLimit()
		for range 1000 {
			l.acquire(context.Background())
			l.release(20*time.Millisecond, sampleAnswered)
		}
		if got := l.current(); got != adaptiveInitialLimit {
			t.Fatalf("limit %d with one request at a time, want it left at %d", got, adaptiveInitialLimit)
		}
	})

	t.Run("ShrinksWhenAnswersQueue", func(t *testing.T) {
		t.Parallel()
		l := newAdaptiveLimit()
		saturate(t, l, 10, func(int) time.Duration { return time.Millisecond })
		grown := l.current()
		// Now the provider (or this process) serves 100 requests a
		// millisecond-slot: whatever is in flight beyond that waits, and
		// the round trip grows with the limit.
		saturate(t, l, 15, func(n int) time.Duration { return time.Duration(max(1, n/100)) * time.Millisecond })
		if got := l.current(); got > grown/2 {
			t.Fatalf("limit %d (was %d) with answers queueing beyond 100 in flight", got, grown)
		}
	})

	t.Run("HalvesWhenThrottled", func(t *testing.T) {
		t.Parallel()
		l := newAdaptiveLimit()
		saturate(t, l, 5, func(int) time.Duration { return 20 * time.Millisecond })
		n := l.current()
		for range n {
			l.acquire(context.Background())
		}
		for range n {
			l.release(20*time.Millisecond, sampleThrottled)
		}
		if got := l.current(); got != n/2 {
			t.Fatalf("limit %d after a throttled window, want %d", got, n/2)
		}
	})

	t.Run("StartsAgainAfterAnIdlePeriod", func(t *testing.T) {
		t.Parallel()
		l := newAdaptiveLimit()
		now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
		l.now = func() time.Time { return now }
		saturate(t, l, 10, func(int) time.Duration { return 20 * time.Millisecond })
		grown := l.current()
		if grown <= adaptiveInitialLimit {
			t.Fatalf("limit %d after 10 windows at 20 ms, want it grown", grown)
		}
		// A pause shorter than the reset keeps what was learnt.
		now = now.Add(adaptiveIdleReset - time.Second)
		l.acquire(context.Background())
		l.release(20*time.Millisecond, sampleAnswered)
		if got := l.current(); got != grown {
			t.Fatalf("limit %d after %v idle, want %d kept", got, adaptiveIdleReset-time.Second, grown)
		}
		// A longer one: the next request starts from the initial limit,
		// and the provider's round trip is measured anew.
		now = now.Add(adaptiveIdleReset)
		l.acquire(context.Background())
		if got := l.current(); got != adaptiveInitialLimit {
			t.Fatalf("limit %d after %v idle, want %d", got, adaptiveIdleReset, adaptiveInitialLimit)
		}
		l.mu.Lock()
		noLoad := l.noLoad
		l.mu.Unlock()
		if noLoad != 0 {
			t.Fatalf("no-load round trip %v kept after the idle period", noLoad)
		}
		l.release(20*time.Millisecond, sampleAnswered)
		saturate(t, l, 10, func(int) time.Duration { return 20 * time.Millisecond })
		if got := l.current(); got != grown {
			t.Fatalf("limit %d after 10 windows at 20 ms again, want %d as the first time", got, grown)
		}
	})
}
