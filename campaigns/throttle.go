package campaigns

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"golang.org/x/time/rate"
)

// throttleHorizon is how far ahead of now the campaign's throttle may be
// booked before a batch claims more: a batch that would wait longer gives
// its job back to River until then, holding no worker and no claim.
const throttleHorizon = 2 * time.Second

// throttledSlice is how many seconds of sending one slice of a throttled
// campaign holds, so that batches booking the throttle one after another
// wait seconds, not minutes.
const throttledSlice = 2

// backlog gives the job back to River while the campaign's throttle is
// booked further ahead than throttleHorizon. The throttle is one row in
// PostgreSQL (campaigns.throttle_next_at, its next free moment), so it
// holds across every batch and process, and after a pause or a restart as
// well: nothing is saved up while nobody sends.
func (r *sendRun) backlog(ctx context.Context) error {
	if r.perSecond <= 0 {
		return nil
	}
	var aheadMicros int64
	if err := r.s.pool.QueryRow(ctx, `SELECT coalesce((extract(epoch FROM throttle_next_at - now()) * 1e6)::bigint, 0)
		FROM campaigns WHERE id = $1`, r.c.ID).Scan(&aheadMicros); err != nil {
		return fmt.Errorf("campaigns: read throttle: %w", err)
	}
	if ahead := time.Duration(aheadMicros) * time.Microsecond; ahead > throttleHorizon {
		return river.JobSnooze(ahead - throttleHorizon)
	}
	return nil
}

// reserve books n sends of the campaign's throttle for a claimed slice,
// waits until the booked stretch begins and returns a limiter that spreads
// the slice over it (nil without a throttle). When the wait would outlast
// the job or the process drains meanwhile, it gives the booking back and
// returns errYield: the caller releases the slice and yields.
func (r *sendRun) reserve(ctx context.Context, n int) (*rate.Limiter, error) {
	if r.perSecond <= 0 || n == 0 {
		return nil, nil
	}
	per := time.Duration(float64(time.Second) / r.perSecond)
	span := per * time.Duration(n)
	var start, end, dbNow time.Time
	if err := r.s.pool.QueryRow(ctx, `
		UPDATE campaigns SET throttle_next_at = greatest(coalesce(throttle_next_at, now()), now()) + $2 * interval '1 microsecond'
		WHERE id = $1
		RETURNING throttle_next_at - $2 * interval '1 microsecond', throttle_next_at, now()`,
		r.c.ID, span.Microseconds()).Scan(&start, &end, &dbNow); err != nil {
		return nil, fmt.Errorf("campaigns: book throttle: %w", err)
	}
	wait := start.Sub(dbNow)
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline && time.Now().Add(wait+span+time.Second).After(deadline) {
		return nil, r.unbook(ctx, end, span)
	}
	if err := r.s.sleep(ctx, wait); err != nil {
		return nil, r.unbook(ctx, end, span)
	}
	if r.s.isDraining() {
		return nil, r.unbook(ctx, end, span)
	}
	return rate.NewLimiter(rate.Limit(r.perSecond), 1), nil
}

// errYield asks a run to release what it claimed and give the job back.
var errYield = river.JobSnooze(0)

// unbook gives a booking back when nobody booked after it (otherwise the
// gap stays and the campaign runs a little under its rate), and returns
// errYield.
func (r *sendRun) unbook(ctx context.Context, end time.Time, span time.Duration) error {
	unbookCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := r.s.pool.Exec(unbookCtx, `UPDATE campaigns SET throttle_next_at = throttle_next_at - $3 * interval '1 microsecond'
		WHERE id = $1 AND throttle_next_at = $2`, r.c.ID, end, span.Microseconds()); err != nil {
		return fmt.Errorf("campaigns: give back throttle: %w", err)
	}
	return errYield
}
