package campaigns

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/database"
)

// DeliveryPartitionWidth is how many campaign ids share one partition of the
// deliveries table (migration 009 names the same number).
const DeliveryPartitionWidth = 32

// DefaultDeliveryRetention is how long per-device delivery records are kept
// after their campaign ended, when Config.DeliveryRetention is zero.
const DefaultDeliveryRetention = 90 * 24 * time.Hour

// ensurePartitions makes sure the deliveries partition of campaign id
// exists, and the one after it, so that the next campaigns find theirs made
// ahead of time and creating one never waits on a busy table at the moment
// a campaign starts.
func ensurePartitions(ctx context.Context, db database.DB, id int64) error {
	for _, c := range []int64{id, id + DeliveryPartitionWidth} {
		if _, err := db.Exec(ctx, `SELECT herald_delivery_partition($1)`, c); err != nil {
			return fmt.Errorf("campaigns: delivery partition for campaign %d: %w", c, err)
		}
	}
	return nil
}

// DeliveryPartition is one partition of the deliveries table.
type DeliveryPartition struct {
	Name string
	// Lo and Hi bound the campaign ids it holds: Lo <= id < Hi.
	Lo, Hi int64
}

// DeliveryPartitions lists the partitions of the deliveries table by range.
func (s *Service) DeliveryPartitions(ctx context.Context) ([]DeliveryPartition, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, lo, hi FROM delivery_partitions ORDER BY lo`)
	if err != nil {
		return nil, fmt.Errorf("campaigns: list delivery partitions: %w", err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DeliveryPartition])
	if err != nil {
		return nil, fmt.Errorf("campaigns: list delivery partitions: %w", err)
	}
	return parts, nil
}

// ExpireDeliveries makes the partitions ahead of the newest campaign and
// drops every partition whose campaigns all ended more than the retention
// period ago (by the service's clock). A partition is expired only when its
// range is closed (a newer campaign exists, so no new campaign can fall in
// it) and none of its campaigns is still open (draft, scheduled, running,
// paused, or with a retry round open); a draft started later gets its
// partition back when it sends. The campaigns' totals stay: they are
// counters, not the rows. It returns the partitions it dropped.
func (s *Service) ExpireDeliveries(ctx context.Context) ([]DeliveryPartition, error) {
	var newest int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM campaigns`).Scan(&newest); err != nil {
		return nil, fmt.Errorf("campaigns: newest campaign: %w", err)
	}
	if err := ensurePartitions(ctx, s.pool, newest); err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-s.retention())
	rows, err := s.pool.Query(ctx, `
		SELECT p.name, p.lo, p.hi
		FROM delivery_partitions p
		WHERE p.hi <= $1
		  AND NOT EXISTS (
			SELECT 1 FROM campaigns c
			WHERE c.id >= p.lo AND c.id < p.hi
			  AND (c.status NOT IN ('finished', 'cancelled', 'failed')
			       OR coalesce(c.finished_at, c.updated_at) >= $2
			       OR EXISTS (SELECT 1 FROM campaign_retries r
			                  WHERE r.campaign_id = c.id AND r.state IN ('pending', 'parked'))))
		ORDER BY p.lo`, newest, cutoff)
	if err != nil {
		return nil, fmt.Errorf("campaigns: expired delivery partitions: %w", err)
	}
	expired, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DeliveryPartition])
	if err != nil {
		return nil, fmt.Errorf("campaigns: expired delivery partitions: %w", err)
	}
	var dropped []DeliveryPartition
	for _, p := range expired {
		if err := s.dropPartition(ctx, p); err != nil {
			return dropped, err
		}
		dropped = append(dropped, p)
		s.metrics.partitionsDropped.Inc()
		s.logger.Info("delivery records expired", "partition", p.Name, "campaigns_from", p.Lo, "campaigns_to", p.Hi-1)
	}
	return dropped, nil
}

// dropPartition detaches a partition without blocking the table's readers
// and writers (DETACH ... CONCURRENTLY), drops it and forgets it. Each step
// can be repeated: a detach that was interrupted is finalized, a table
// already gone is not an error.
func (s *Service) dropPartition(ctx context.Context, p DeliveryPartition) error {
	ident := pgx.Identifier{p.Name}.Sanitize()
	var attached, pending bool
	if err := s.pool.QueryRow(ctx, `
		SELECT count(*) > 0, coalesce(bool_or(i.inhdetachpending), false)
		FROM pg_inherits i WHERE i.inhrelid = to_regclass($1)`, ident).Scan(&attached, &pending); err != nil {
		return fmt.Errorf("campaigns: look up partition %s: %w", p.Name, err)
	}
	switch {
	case pending:
		if _, err := s.pool.Exec(ctx, `ALTER TABLE deliveries DETACH PARTITION `+ident+` FINALIZE`); err != nil {
			return fmt.Errorf("campaigns: finalize detaching %s: %w", p.Name, err)
		}
	case attached:
		// CONCURRENTLY runs outside a transaction block: one statement
		// on a pooled connection is.
		if _, err := s.pool.Exec(ctx, `ALTER TABLE deliveries DETACH PARTITION `+ident+` CONCURRENTLY`); err != nil {
			return fmt.Errorf("campaigns: detach %s: %w", p.Name, err)
		}
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+ident); err != nil {
			return fmt.Errorf("campaigns: drop %s: %w", p.Name, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM delivery_partitions WHERE lo = $1`, p.Lo); err != nil {
			return fmt.Errorf("campaigns: forget %s: %w", p.Name, err)
		}
		return nil
	})
}

func (s *Service) retention() time.Duration {
	if s.cfg.DeliveryRetention > 0 {
		return s.cfg.DeliveryRetention
	}
	return DefaultDeliveryRetention
}

// RetentionArgs makes delivery partitions ahead of time and drops expired
// ones.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return "campaigns.delivery_retention" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RetentionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCampaigns, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
}

// RetentionPeriodicJob runs the retention job hourly and at start.
func RetentionPeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true, ID: "campaigns.delivery_retention"})
}

// RetentionWorker runs RetentionArgs.
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *RetentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	_, err := w.Service.ExpireDeliveries(ctx)
	return err
}
