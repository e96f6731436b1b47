package delivery

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestWorkerPool(t *testing.T) {
	t.Parallel()

	// waitLive waits until the pool has n workers.
	waitLive := func(t *testing.T, p *workerPool, n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for p.live.Load() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d workers, want %d", p.live.Load(), n)
			}
			runtime.Gosched()
		}
	}

	t.Run("RunsEveryTaskAtOnce", func(t *testing.T) {
		t.Parallel()
		p := &workerPool{}
		var wg sync.WaitGroup
		release := make(chan struct{})
		for range 50 {
			wg.Add(1)
			p.run(func() { defer wg.Done(); <-release })
		}
		// None waits for another: 50 tasks blocked at once need 50 workers.
		waitLive(t, p, 50)
		close(release)
		wg.Wait()
	})

	t.Run("AnIdleWorkerTakesTheNextTask", func(t *testing.T) {
		t.Parallel()
		p := &workerPool{}
		for i := range 100 {
			done := make(chan struct{})
			if i == 0 {
				p.run(func() { close(done) })
			} else {
				// What run does first, retried until the worker that ran
				// the last task waits for the next one.
				handOver(t, p, func() { close(done) })
			}
			<-done
		}
		if n := p.live.Load(); n != 1 {
			t.Fatalf("%d workers after 100 tasks one after the other, want 1", n)
		}
	})

	t.Run("WorkersEndWhenIdle", func(t *testing.T) {
		t.Parallel()
		p := &workerPool{idle: time.Millisecond}
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			p.run(wg.Done)
		}
		wg.Wait()
		waitLive(t, p, 0)
	})
}

// handOver gives f to an idle worker of p, waiting until one is idle.
func handOver(t *testing.T, p *workerPool, f func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case p.tasks <- f:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no worker became idle")
		}
		runtime.Gosched()
	}
}
