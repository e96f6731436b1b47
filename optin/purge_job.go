package optin

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-im/herald/subscribers"
)

// PurgeArgs removes unconfirmed memberships and expired tokens.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "optin.purge" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (PurgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueOptIn, UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// PurgeWorker runs PurgeArgs.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *PurgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	s := w.Service
	n, err := subscribers.PurgePending(ctx, s.pool, s.now().Add(-s.cfg.PendingPurgeAfter))
	if err != nil {
		return err
	}
	// Used and expired confirmation tokens are kept a day so that a second
	// click still says "already used" rather than "not valid".
	if _, err := s.pool.Exec(ctx, `DELETE FROM optin_tokens WHERE expires_at < $1`, s.now().Add(-24*time.Hour)); err != nil {
		return fmt.Errorf("optin: purge tokens: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM subscriber_tokens WHERE expires_at < $1`, s.now()); err != nil {
		return fmt.Errorf("optin: purge subscriber tokens: %w", err)
	}
	s.logger.Info("purged unconfirmed memberships", "count", n)
	return nil
}

// PurgePeriodicJob runs the purge hourly and at start.
func PurgePeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return PurgeArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// AddWorkers registers the opt-in workers.
func (s *Service) AddWorkers(workers *river.Workers, observe DeliveryObserver) {
	river.AddWorker(workers, &ConfirmationWorker{Service: s, Observe: observe})
	river.AddWorker(workers, &ConfirmationEmailWorker{Service: s})
	river.AddWorker(workers, &PurgeWorker{Service: s})
}
