package web

import (
	"sync"
	"time"
)

// limiter counts requests per key in fixed windows. It lives in the process:
// several Herald processes each enforce the limit, which bounds abuse without
// a round trip to the database on every public request.
type limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	counts    map[string]*window
	nextSweep time.Time
}

type window struct {
	count int
	reset time.Time
}

func newLimiter(limit int, per time.Duration) *limiter {
	return &limiter{limit: limit, window: per, now: time.Now, counts: map[string]*window{}}
}

// allow counts one request for key and reports whether it is within the
// limit, and if not how long until it will be.
func (l *limiter) allow(key string) (bool, time.Duration) {
	return l.check(key, true)
}

// spent reports whether key's budget is used up, and for how long, without
// counting a request: for budgets spent only once a request has proven
// whose it is.
func (l *limiter) spent(key string) (bool, time.Duration) {
	ok, wait := l.check(key, false)
	return !ok, wait
}

func (l *limiter) check(key string, count bool) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.nextSweep) {
		for k, w := range l.counts {
			if now.After(w.reset) {
				delete(l.counts, k)
			}
		}
		l.nextSweep = now.Add(l.window)
	}
	w, ok := l.counts[key]
	if !ok || now.After(w.reset) {
		if !count {
			return true, 0
		}
		w = &window{reset: now.Add(l.window)}
		l.counts[key] = w
	}
	if w.count >= l.limit {
		return false, w.reset.Sub(now)
	}
	if count {
		w.count++
	}
	return true, 0
}
