package campaigns

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/delivery"
)

// ReconcileArgs looks for campaigns whose state disagrees with their work
// and mends them.
type ReconcileArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return "campaigns.reconcile" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCampaigns, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: ReconcileEvery}}
}

// ReconcileEvery is how often the reconciler runs.
const ReconcileEvery = 30 * time.Second

// maxRequeues is how often the reconciler queues a batch again whose jobs
// keep ending without finishing it, before it fails the campaign.
const maxRequeues = 5

// ReconcilePeriodicJob runs the reconciler every ReconcileEvery and at start.
func ReconcilePeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(ReconcileEvery),
		func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true, ID: "campaigns.reconcile"})
}

// ReconcileWorker runs ReconcileArgs.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *ReconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	_, err := w.Service.Reconcile(ctx)
	return err
}

// Mend is one disagreement the reconciler found and mended.
type Mend struct {
	CampaignID int64
	// Kind is what was mended: "finished" (a campaign with nothing left to
	// do), "closed" (open work of a campaign that ended), "parked" (open
	// work of a paused campaign with no job), "requeued" (open work of a
	// running campaign whose job had ended) or "failed" (a batch that kept
	// ending unfinished).
	Kind string
	// What names the work: "batch 7", "wave 0", "retry round 9".
	What string
}

// liveJob is true when a River job of the kind for the row's work is still
// to run or running; %s are the kind, the args' identifying keys, and the
// row's generation column.
const liveJob = `EXISTS (SELECT 1 FROM river_job j WHERE j.kind = '%s' AND j.args @> %s
	AND coalesce((j.args->>'gen')::int, 0) = %s AND j.state NOT IN ('completed', 'cancelled', 'discarded'))`

// Reconcile finds campaigns whose state disagrees with their batches, waves
// and retry rounds, mends each (in one transaction with any job it queues),
// logs and counts it, and returns what it mended. Jobs normally keep the two
// in step; this catches what a crash, a lost connection or a bug left
// behind, so that no campaign stays running forever. With ids it looks at
// those campaigns only.
func (s *Service) Reconcile(ctx context.Context, ids ...int64) ([]Mend, error) {
	var only []int64
	if len(ids) > 0 {
		only = ids
	}
	var mends []Mend
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One reconciler at a time: the periodic one skips a run while
		// another is at work; a call for named campaigns waits its turn.
		locked := true
		lock := `SELECT pg_try_advisory_xact_lock($1)`
		if only != nil {
			lock = `SELECT pg_advisory_xact_lock($1) IS NULL`
		}
		if err := tx.QueryRow(ctx, lock, reconcileLock).Scan(&locked); err != nil {
			return fmt.Errorf("campaigns: reconcile lock: %w", err)
		}
		if !locked && only == nil {
			return nil
		}
		for _, step := range []func(context.Context, pgx.Tx, []int64) ([]Mend, error){
			s.closeEnded, s.parkOrphans, s.requeueOrphans, s.finishDone,
		} {
			m, err := step(ctx, tx, only)
			if err != nil {
				return err
			}
			mends = append(mends, m...)
		}
		if len(mends) == 0 {
			return nil
		}
		counts := map[int64]int{}
		for _, m := range mends {
			counts[m.CampaignID]++
		}
		mended, ns := make([]int64, 0, len(counts)), make([]int32, 0, len(counts))
		for id, n := range counts {
			mended, ns = append(mended, id), append(ns, int32(n))
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns c SET mended = c.mended + u.n
			FROM unnest($1::bigint[], $2::int[]) AS u(id, n) WHERE c.id = u.id`, mended, ns); err != nil {
			return fmt.Errorf("campaigns: count mends: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range mends {
		s.logger.Warn("campaign state mended by the reconciler", "campaign_id", m.CampaignID, "mend", m.Kind, "work", m.What)
		s.metrics.mends.WithLabelValues(m.Kind).Inc()
	}
	return mends, nil
}

// reconcileLock is the advisory lock that keeps reconcilers apart.
const reconcileLock = 0x48455243 // "HERC"

// only is the condition that limits a step to the campaigns asked for ($1,
// NULL for all) on the campaigns table aliased c.
const only = ` AND ($1::bigint[] IS NULL OR c.id = ANY($1))`

// mendRows runs a statement that returns (campaign id, what) per mend.
func mendRows(ctx context.Context, tx pgx.Tx, kind, sql string, ids []int64) ([]Mend, error) {
	rows, err := tx.Query(ctx, sql, ids)
	if err != nil {
		return nil, fmt.Errorf("campaigns: reconcile (%s): %w", kind, err)
	}
	mends, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Mend, error) {
		m := Mend{Kind: kind}
		return m, r.Scan(&m.CampaignID, &m.What)
	})
	if err != nil {
		return nil, fmt.Errorf("campaigns: reconcile (%s): %w", kind, err)
	}
	return mends, nil
}

// closeEnded closes open batches and retry rounds of campaigns that were
// cancelled or failed, and batches of finished ones.
func (s *Service) closeEnded(ctx context.Context, tx pgx.Tx, ids []int64) ([]Mend, error) {
	batches, err := mendRows(ctx, tx, "closed", `UPDATE campaign_batches b SET state = 'cancelled'
		FROM campaigns c WHERE c.id = b.campaign_id AND c.status IN ('cancelled', 'failed', 'finished')
		AND b.state IN ('pending', 'parked')`+only+` RETURNING b.campaign_id, 'batch ' || b.batch`, ids)
	if err != nil {
		return nil, err
	}
	rounds, err := mendRows(ctx, tx, "closed", `UPDATE campaign_retries r SET state = 'cancelled'
		FROM campaigns c WHERE c.id = r.campaign_id AND c.status IN ('cancelled', 'failed')
		AND r.state IN ('pending', 'parked')`+only+` RETURNING r.campaign_id, 'retry round ' || r.round`, ids)
	return append(batches, rounds...), err
}

// parkOrphans parks open work of paused campaigns that no job will park.
// The campaign row is share-locked, as parkBatch does: a Resume committing
// meanwhile either sees what was parked here or makes this see the campaign
// running.
func (s *Service) parkOrphans(ctx context.Context, tx pgx.Tx, ids []int64) ([]Mend, error) {
	paused := `(SELECT c.id, c.started_at FROM campaigns c WHERE c.status = 'paused'` + only + ` FOR SHARE) c`
	var all []Mend
	for _, q := range []string{
		`UPDATE campaign_batches b SET state = 'parked' FROM ` + paused + `
		 WHERE c.id = b.campaign_id AND b.state = 'pending'
		 AND NOT ` + fmt.Sprintf(liveJob, "campaigns.batch", `jsonb_build_object('campaign_id', b.campaign_id, 'batch', b.batch)`, "b.generation") + `
		 RETURNING b.campaign_id, 'batch ' || b.batch`,
		`UPDATE campaign_waves w SET parked = true FROM ` + paused + `
		 WHERE c.id = w.campaign_id AND NOT w.fanned_out AND NOT w.parked AND c.started_at IS NOT NULL
		 AND NOT ` + fmt.Sprintf(liveJob, "campaigns.start", `jsonb_build_object('campaign_id', w.campaign_id, 'wave', w.wave)`, "w.generation") + `
		 RETURNING w.campaign_id, 'wave ' || w.wave`,
		`UPDATE campaign_retries r SET state = 'parked' FROM ` + paused + `
		 WHERE c.id = r.campaign_id AND r.state = 'pending'
		 AND NOT ` + fmt.Sprintf(liveJob, "campaigns.retry_failed", `jsonb_build_object('campaign_id', r.campaign_id, 'round', r.round)`, "r.generation") + `
		 RETURNING r.campaign_id, 'retry round ' || r.round`,
	} {
		m, err := mendRows(ctx, tx, "parked", q, ids)
		if err != nil {
			return nil, err
		}
		all = append(all, m...)
	}
	return all, nil
}

// requeueOrphans queues the next generation of open work of running
// campaigns whose job has ended (discarded after its attempts, cancelled, or
// lost), and fails a campaign whose batch keeps ending unfinished.
func (s *Service) requeueOrphans(ctx context.Context, tx pgx.Tx, ids []int64) ([]Mend, error) {
	type orphan struct {
		campaignID int64
		kind       string
		n, gen     int
		requeues   int
		platform   string
		sendAt     time.Time
	}
	rows, err := tx.Query(ctx, `
		SELECT b.campaign_id, 'batch', b.batch, b.generation, b.requeues, b.platform, now()
		FROM campaign_batches b JOIN campaigns c ON c.id = b.campaign_id
		WHERE c.status = 'running' AND b.state IN ('pending', 'parked')
		AND NOT `+fmt.Sprintf(liveJob, "campaigns.batch", `jsonb_build_object('campaign_id', b.campaign_id, 'batch', b.batch)`, "b.generation")+only+`
		UNION ALL
		SELECT w.campaign_id, 'wave', w.wave, w.generation, 0, '', w.send_at
		FROM campaign_waves w JOIN campaigns c ON c.id = w.campaign_id
		WHERE c.status IN ('running', 'scheduled') AND NOT w.fanned_out
		AND NOT `+fmt.Sprintf(liveJob, "campaigns.start", `jsonb_build_object('campaign_id', w.campaign_id, 'wave', w.wave)`, "w.generation")+only+`
		UNION ALL
		SELECT r.campaign_id, 'retry round', r.round, r.generation, r.requeues, '', now()
		FROM campaign_retries r JOIN campaigns c ON c.id = r.campaign_id
		WHERE c.status IN ('running', 'finished') AND r.state IN ('pending', 'parked')
		AND NOT `+fmt.Sprintf(liveJob, "campaigns.retry_failed", `jsonb_build_object('campaign_id', r.campaign_id, 'round', r.round)`, "r.generation")+only, ids)
	if err != nil {
		return nil, fmt.Errorf("campaigns: reconcile (orphans): %w", err)
	}
	orphans, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orphan, error) {
		var o orphan
		return o, r.Scan(&o.campaignID, &o.kind, &o.n, &o.gen, &o.requeues, &o.platform, &o.sendAt)
	})
	if err != nil {
		return nil, fmt.Errorf("campaigns: reconcile (orphans): %w", err)
	}
	var mends []Mend
	var jobs []river.InsertManyParams
	failed := map[int64]bool{}
	for _, o := range orphans {
		what := fmt.Sprintf("%s %d", o.kind, o.n)
		if failed[o.campaignID] {
			continue
		}
		if o.requeues >= maxRequeues {
			failed[o.campaignID] = true
			if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'failed', finished_at = now(), updated_at = now(),
				failure_reason = $2 WHERE id = $1 AND status IN ('running', 'finished')`, o.campaignID,
				fmt.Sprintf("%s kept ending unfinished after %d attempts to run it again; see the job errors", what, o.requeues)); err != nil {
				return nil, fmt.Errorf("campaigns: reconcile (fail): %w", err)
			}
			mends = append(mends, Mend{CampaignID: o.campaignID, Kind: "failed", What: what})
			continue
		}
		var stmt string
		var args river.JobArgs
		opts := &river.InsertOpts{}
		switch o.kind {
		case "batch":
			// Parked work of a running campaign (a resume that raced a
			// park) is queued too, without counting against the batch.
			stmt = `UPDATE campaign_batches SET state = 'pending', generation = generation + 1,
				requeues = requeues + CASE WHEN state = 'pending' THEN 1 ELSE 0 END
				WHERE campaign_id = $1 AND batch = $2 AND generation = $3`
			args, opts.Queue = BatchArgs{CampaignID: o.campaignID, Batch: o.n, Gen: o.gen + 1}, QueueFor(delivery.Platform(o.platform))
		case "wave":
			stmt = `UPDATE campaign_waves SET parked = false, generation = generation + 1
				WHERE campaign_id = $1 AND wave = $2 AND generation = $3`
			args, opts = StartArgs{CampaignID: o.campaignID, Wave: o.n, Gen: o.gen + 1}, runAt(o.sendAt.Add(-schedulerLead), s.now())
		default:
			stmt = `UPDATE campaign_retries SET state = 'pending', generation = generation + 1,
				requeues = requeues + CASE WHEN state = 'pending' THEN 1 ELSE 0 END
				WHERE campaign_id = $1 AND round = $2 AND generation = $3`
			args = RetryArgs{CampaignID: o.campaignID, Round: o.n, Gen: o.gen + 1}
		}
		tag, err := tx.Exec(ctx, stmt, o.campaignID, o.n, o.gen)
		if err != nil {
			return nil, fmt.Errorf("campaigns: reconcile (requeue %s): %w", what, err)
		}
		if tag.RowsAffected() == 0 {
			continue // a resume or another mend moved it on meanwhile
		}
		jobs = append(jobs, river.InsertManyParams{Args: args, InsertOpts: opts})
		mends = append(mends, Mend{CampaignID: o.campaignID, Kind: "requeued", What: what})
	}
	if len(jobs) > 0 {
		if _, err := s.river.InsertManyTx(ctx, tx, jobs); err != nil {
			return nil, fmt.Errorf("campaigns: reconcile (queue): %w", err)
		}
	}
	return mends, nil
}

// finishDone finishes running campaigns with every wave fanned out and no
// open batch: their last batch's job ended before it could say so.
func (s *Service) finishDone(ctx context.Context, tx pgx.Tx, ids []int64) ([]Mend, error) {
	mends, err := s.finishDoneRows(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	for _, m := range mends {
		if err := recordChange(ctx, tx, audit.System("campaign reconciler"), "campaign.finish", m.CampaignID, nil); err != nil {
			return nil, err
		}
	}
	return mends, nil
}

func (s *Service) finishDoneRows(ctx context.Context, tx pgx.Tx, ids []int64) ([]Mend, error) {
	return mendRows(ctx, tx, "finished", `UPDATE campaigns c SET status = 'finished', finished_at = now(), updated_at = now()
		WHERE c.status = 'running'
		AND NOT EXISTS (SELECT 1 FROM campaign_waves w WHERE w.campaign_id = c.id AND NOT w.fanned_out)
		AND NOT EXISTS (SELECT 1 FROM campaign_batches b WHERE b.campaign_id = c.id AND b.state IN ('pending', 'parked'))
		AND NOT EXISTS (SELECT 1 FROM campaign_retries r WHERE r.campaign_id = c.id AND r.state IN ('pending', 'parked'))`+only+`
		RETURNING c.id, 'campaign'`, ids)
}
