package users

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// PurgeArgs deletes ended sessions, spent access links' leftovers and
// stale sign-in failure counts.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "users.purge" }

// InsertOpts implements river.JobArgsWithInsertOpts: one run per period,
// however many processes schedule it.
func (PurgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// PurgeWorker runs PurgeArgs.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *PurgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	sessions, err := w.Service.PurgeExpiredSessions(ctx)
	if err != nil {
		return err
	}
	failures, err := w.Service.PurgeSignInFailures(ctx)
	if err != nil {
		return err
	}
	w.Service.logger.Info("purged ended sessions", "sessions", sessions, "sign_in_failures", failures)
	return nil
}

// PurgePeriodicJob runs the purge every 30 minutes and at start.
func PurgePeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(30*time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return PurgeArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// AddWorkers registers the service's workers.
func (s *Service) AddWorkers(workers *river.Workers) {
	river.AddWorker(workers, &PurgeWorker{Service: s})
}
