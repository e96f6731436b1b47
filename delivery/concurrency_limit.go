package delivery

import (
	"context"
	"math"
	"sync"
	"time"
)

// Bounds of an adaptive in-flight limit. A provider answering in 20 ms needs
// about 200 requests in flight for 10,000 messages a second; the ceiling
// keeps memory bounded (each request in flight holds a goroutine and its
// buffers) should a provider slow to seconds. The floor is what a fast
// provider needs to keep this process busy (measured: below it, a provider
// answering at once gets fewer messages a second, not faster answers).
const (
	adaptiveMinLimit     = 128
	adaptiveInitialLimit = 128
	adaptiveMaxLimit     = 2048
	// rttTolerance is how much longer than the no-queue round trip an
	// average round trip may be and still count as no queue. Round trips
	// scatter (timers, scheduling, the provider's own work), and a pipeline
	// that keeps this process and the database busy adds its own waits:
	// measured at 20 ms, holding the average within 1.5 times the no-queue
	// round trip cost a fifth of the throughput that twice allows.
	rttTolerance = 2.0
	// adaptiveIdleReset is how long a provider may go without a request
	// before what the limit learnt of it counts as stale: the next request
	// starts again from the initial limit, as TCP restarts its congestion
	// window after an idle period (RFC 5681, 4.1). A limit grown for a slow
	// moment would otherwise greet the next campaign with thousands of
	// requests at once, each holding its buffers, before a window could
	// show that they only queue.
	adaptiveIdleReset = 10 * time.Second
)

// concurrencyLimit bounds the requests in flight to one provider. A fixed
// limit never moves; an adaptive one follows the provider's latency the way
// TCP Vegas follows a path's: it compares the round-trip time of recent
// requests with the lowest one seen lately (the time with no queue) and
// estimates how many requests are queued, somewhere between here and the
// provider, rather than being served. Few queued and the limit in use: the
// limit grows. Many queued: it shrinks. So at 20 ms a provider gets the
// requests in flight that 20 ms takes, and when this process or the
// provider is the bottleneck the limit stops growing instead of piling up
// requests that only wait. A provider that throttles halves it.
//
// Waiters are served in arrival order, so one batch cannot starve another.
type concurrencyLimit struct {
	mu       sync.Mutex
	adaptive bool
	limit    float64
	inflight int
	waiters  []chan struct{}

	// The current window of samples.
	n         int
	sum       time.Duration
	min       time.Duration
	saturated bool // the limit was reached in this window
	throttled bool
	// now is the clock (a test's, or time.Now); idleSince is when the last
	// request in flight finished.
	now       func() time.Time
	idleSince time.Time

	// noLoad is the round trip with no queue: the lowest one seen, allowed
	// to creep up by 1/32 a window, so that it follows a provider that
	// became slower for good, but slowly enough that a queue that persists
	// is not taken for the provider's own pace.
	noLoad time.Duration
}

func newFixedLimit(n int) *concurrencyLimit {
	return &concurrencyLimit{limit: float64(n)}
}

func newAdaptiveLimit() *concurrencyLimit {
	return &concurrencyLimit{adaptive: true, limit: adaptiveInitialLimit, now: time.Now}
}

// current is the limit now.
func (l *concurrencyLimit) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// acquire takes a slot, waiting in line until one is free or ctx ends.
func (l *concurrencyLimit) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.adaptive && l.inflight == 0 && !l.idleSince.IsZero() && l.now().Sub(l.idleSince) >= adaptiveIdleReset {
		l.restart()
	}
	if l.inflight < int(l.limit) && len(l.waiters) == 0 {
		l.inflight++
		if l.inflight == int(l.limit) {
			l.saturated = true
		}
		l.mu.Unlock()
		return nil
	}
	l.saturated = true
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				l.mu.Unlock()
				return ctx.Err()
			}
		}
		l.mu.Unlock()
		// The slot was handed over as ctx ended: give it back.
		l.release(0, sampleNone)
		return ctx.Err()
	}
}

// sampleKind says what a finished request tells the limit.
type sampleKind int

const (
	sampleNone      sampleKind = iota // no answer to learn from (not sent, cut off)
	sampleAnswered                    // the provider answered: its round trip counts
	sampleThrottled                   // the provider said to slow down
)

// release frees a slot and learns from the request's round trip.
func (l *concurrencyLimit) release(rtt time.Duration, kind sampleKind) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	if l.adaptive {
		l.learn(rtt, kind)
		if l.inflight == 0 {
			l.idleSince = l.now()
		}
	}
	for l.inflight < int(l.limit) && len(l.waiters) > 0 {
		w := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.inflight++
		close(w)
	}
}

// restart forgets what the limit learnt: the next requests start from the
// initial limit and measure the provider's round trip anew.
func (l *concurrencyLimit) restart() {
	l.limit = min(l.limit, adaptiveInitialLimit)
	l.noLoad = 0
	l.n, l.sum, l.min, l.saturated, l.throttled = 0, 0, 0, false, false
}

func (l *concurrencyLimit) learn(rtt time.Duration, kind sampleKind) {
	switch kind {
	case sampleNone:
		return
	case sampleThrottled:
		l.throttled = true
	}
	l.n++
	l.sum += rtt
	if l.min == 0 || rtt < l.min {
		l.min = rtt
	}
	// A window is about one round trip's worth of requests.
	if l.n < max(32, int(l.limit)) {
		return
	}
	if l.noLoad == 0 {
		l.noLoad = l.min
	}
	l.noLoad = min(l.min, l.noLoad+l.noLoad/32)
	noLoad := l.noLoad
	avg := l.sum / time.Duration(l.n)
	// Up to rttTolerance times the no-queue round trip counts as no queue,
	// or scatter alone would hold a slow provider's limit down.
	queued := max(0, l.limit*(1-float64(noLoad)*rttTolerance/float64(max(avg, 1))))
	lg := math.Log10(l.limit)
	alpha, beta := max(3, 3*lg), max(6, 6*lg)
	switch {
	case l.throttled:
		l.limit /= 2
	case queued < alpha && l.saturated:
		l.limit += max(1, l.limit/4)
	case queued > beta:
		l.limit -= max(1, l.limit/10)
	}
	l.limit = min(max(l.limit, adaptiveMinLimit), adaptiveMaxLimit)
	l.n, l.sum, l.min, l.saturated, l.throttled = 0, 0, 0, false, false
}
