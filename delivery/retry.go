package delivery

import (
	"context"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"
)

// SendOptions tune one SendWith call.
type SendOptions struct {
	// MaxAttempts bounds how often a device is tried within this call; 0 or
	// 1 means once, leaving retries to the caller (a River job's own retry).
	// Only ClassRetryable and ClassThrottled outcomes are tried again.
	MaxAttempts int
	// Backoff is the wait before attempt n (n >= 2); nil means
	// DefaultBackoff. A provider's Retry-After wins when it is longer.
	Backoff func(attempt int) time.Duration
	// Limiter caps this message stream (e.g. a campaign's throttle) on top of
	// the sender's per-provider limits.
	Limiter *rate.Limiter
}

// DefaultBackoff is exponential from 500 ms, capped at 30 s, with full
// jitter so that many senders retrying at once do not retry in step.
func DefaultBackoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt-2, 6)
	d = min(d, 30*time.Second)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// SendWith is Send with options. Devices whose outcome is ClassRetryable or
// ClassThrottled are sent again, up to MaxAttempts, after a backoff; no other
// class is. In particular a device a provider accepted (ClassDelivered) or
// may have accepted (ClassUnknown) is never sent again, nor is one left
// ClassNotSent (its context has ended, so nothing more is sent; the caller
// may send it later). Retries stop when ctx ends.
func (s *Sender) SendWith(ctx context.Context, m *Message, devices []Device, opts SendOptions) []Outcome {
	outcomes := s.send(ctx, m, devices, opts.Limiter)
	backoff := opts.Backoff
	if backoff == nil {
		backoff = DefaultBackoff
	}
	for attempt := 2; attempt <= opts.MaxAttempts; attempt++ {
		var again []int
		var wait time.Duration
		for i, o := range outcomes {
			// Only classes where the provider does not have the message;
			// never ClassUnknown (it may) or ClassNotSent (ctx has ended).
			if o.Class == ClassRetryable || o.Class == ClassThrottled {
				again = append(again, i)
				wait = max(wait, o.RetryAfter)
			}
		}
		if len(again) == 0 {
			break
		}
		wait = max(wait, backoff(attempt))
		select {
		case <-ctx.Done():
			return outcomes
		case <-time.After(wait):
		}
		retry := make([]Device, len(again))
		for k, i := range again {
			retry[k] = devices[i]
		}
		for k, o := range s.send(ctx, m, retry, opts.Limiter) {
			outcomes[again[k]] = o
		}
	}
	return outcomes
}
