package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-im/herald/database"
)

// OutboxRetention is how long outbox events are kept: long enough for any
// reader (a live stream resuming, the webhook dispatcher after an outage)
// to catch up. The audit log is kept for good; the outbox is a queue.
const OutboxRetention = 72 * time.Hour

// PurgeOutboxArgs deletes outbox events older than OutboxRetention.
type PurgeOutboxArgs struct{}

// Kind is the job kind.
func (PurgeOutboxArgs) Kind() string { return "audit.purge_outbox" }

// InsertOpts makes one run per period however many processes schedule it.
func (PurgeOutboxArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// PurgeOutboxWorker runs PurgeOutboxArgs.
type PurgeOutboxWorker struct {
	river.WorkerDefaults[PurgeOutboxArgs]
	DB     database.DB
	Logger *slog.Logger
}

// Work deletes old events in batches, so that no statement holds many
// rows locked.
func (w *PurgeOutboxWorker) Work(ctx context.Context, _ *river.Job[PurgeOutboxArgs]) error {
	var total int64
	for {
		tag, err := w.DB.Exec(ctx, `DELETE FROM outbox WHERE id IN (
			SELECT id FROM outbox WHERE at < now() - $1::interval LIMIT 10000)`, OutboxRetention.String())
		if err != nil {
			return fmt.Errorf("audit: purge outbox: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			break
		}
	}
	if total > 0 {
		w.Logger.Info("purged old outbox events", "events", total)
	}
	return nil
}

// PurgeOutboxPeriodicJob runs the purge every hour and at start.
func PurgeOutboxPeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return PurgeOutboxArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
