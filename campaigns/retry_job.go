package campaigns

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// RetryArgs re-sends a campaign's retryable failures (one round).
type RetryArgs struct {
	CampaignID int64 `json:"campaign_id"`
	Round      int   `json:"round"`
}

// Kind implements river.JobArgs.
func (RetryArgs) Kind() string { return "campaigns.retry_failed" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RetryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCampaigns, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RetryWorker runs RetryArgs.
type RetryWorker struct {
	river.WorkerDefaults[RetryArgs]
	Service *Service
}

// RetryFailed queues a re-send of the deliveries that failed for a reason
// that may pass (retryable, throttled). Accepted, gone and rejected ones are
// never re-sent.
func (s *Service) RetryFailed(ctx context.Context, id int64) (int64, error) {
	var queued int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getCampaign(ctx, tx, id, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if c.Status != StatusRunning && c.Status != StatusFinished {
			return fmt.Errorf("%w: a %s campaign cannot retry", ErrTransition, c.Status)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND status = 'failed'
			AND outcome IN ('retryable', 'throttled')`, id).Scan(&queued); err != nil {
			return err
		}
		if queued == 0 {
			return nil
		}
		var round int
		if err := tx.QueryRow(ctx, `UPDATE campaigns SET next_batch = next_batch + 1 WHERE id = $1 RETURNING next_batch`, id).Scan(&round); err != nil {
			return err
		}
		_, err = s.river.InsertTx(ctx, tx, RetryArgs{CampaignID: id, Round: round}, nil)
		return err
	})
	return queued, err
}

// Work implements river.Worker. Rows move from failed to claimed in the same
// statement that picks them, so no two rounds take the same device.
func (w *RetryWorker) Work(ctx context.Context, job *river.Job[RetryArgs]) error {
	s, a := w.Service, job.Args
	batch := -a.Round // retried rows carry the round as a negative batch
	if job.Attempt > 1 {
		if err := s.markUnknown(ctx, a.CampaignID, batch); err != nil {
			return err
		}
	}
	c, err := s.Get(ctx, a.CampaignID)
	if err != nil {
		return err
	}
	q, err := s.audience(ctx, s.pool, c.AppID, &c.Audience)
	if err != nil {
		return err
	}
	run, err := s.newSendRun(ctx, c)
	if err != nil {
		return err
	}
	for {
		rows, err := s.pool.Query(ctx, `WITH picked AS (
				SELECT device_id FROM deliveries WHERE campaign_id = $1 AND status = 'failed'
				AND outcome IN ('retryable', 'throttled') ORDER BY device_id LIMIT $2 FOR UPDATE SKIP LOCKED
			)
			UPDATE deliveries d SET status = 'claimed', batch = $3, attempts = attempts + 1, claimed_at = now(),
				outcome = NULL, reason = NULL, finished_at = NULL
			FROM picked WHERE d.campaign_id = $1 AND d.device_id = picked.device_id RETURNING d.device_id`,
			a.CampaignID, ClaimSlice, batch)
		if err != nil {
			return fmt.Errorf("campaigns: claim retries: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("campaigns: claim retries: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		// Only devices still in the audience (still confirmed, still active).
		devices, err := s.devicesIn(ctx, q.and("d.id = ANY(%s::bigint[])", ids))
		if err != nil {
			return err
		}
		if _, err := s.pool.Exec(ctx, `UPDATE deliveries SET status = 'failed', outcome = 'left_audience', finished_at = now()
			WHERE campaign_id = $1 AND batch = $2 AND status = 'claimed' AND NOT (device_id = ANY($3::bigint[]))`,
			a.CampaignID, batch, deviceIDs(devices)); err != nil {
			return err
		}
		if err := run.send(ctx, devices); err != nil {
			return err
		}
	}
}

func (s *Service) devicesIn(ctx context.Context, q *audienceQuery) ([]claimed, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+claimedColumns+` `+q.from, q.params()...)
	if err != nil {
		return nil, fmt.Errorf("campaigns: load devices: %w", err)
	}
	return pgx.CollectRows(rows, scanClaimed)
}

func deviceIDs(devices []claimed) []int64 {
	out := make([]int64, len(devices))
	for i, d := range devices {
		out[i] = d.device.ID
	}
	return out
}
