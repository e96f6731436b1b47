package campaigns

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
)

// RetryArgs re-sends a campaign's failures that may pass (one round).
type RetryArgs struct {
	CampaignID int64 `json:"campaign_id"`
	Round      int   `json:"round"`
	// Gen is the round's generation, as for batches.
	Gen int `json:"gen,omitempty"`
}

// Kind implements river.JobArgs.
func (RetryArgs) Kind() string { return "campaigns.retry_failed" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RetryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCampaigns, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RetryWorker runs RetryArgs.
type RetryWorker struct {
	river.WorkerDefaults[RetryArgs]
	Service *Service
}

// RetryOptions choose what a retry round sends again.
type RetryOptions struct {
	// IncludeUnknown also sends to devices whose outcome is unknown (they may
	// have the message; the resend carries the same collapse key). Without
	// it, a retry never sends to a device that may already have it.
	IncludeUnknown bool `json:"include_unknown"`
}

// retryable is which delivery rows a retry round picks: failures that may
// pass (retryable, throttled) whose in-campaign retry is over, and with
// IncludeUnknown ($3) the unknown ones; never rows this round already has.
const retryable = `batch <> $2 AND ((status = 'failed' AND outcome IN ('retryable', 'throttled') AND retry_at IS NULL)
	OR ($3 AND status = 'unknown' AND resends < $4))`

// RetryFailed queues a re-send of the deliveries that failed for a reason
// that may pass (retryable, throttled), and with opts.IncludeUnknown of
// those whose outcome is unknown. Delivered, gone and rejected ones are
// never re-sent. It returns how many devices the round will pick up.
func (s *Service) RetryFailed(ctx context.Context, actor audit.Actor, id int64, opts RetryOptions) (int64, error) {
	var queued int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getCampaign(ctx, tx, id, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if c.Status != StatusRunning && c.Status != StatusFinished {
			return fmt.Errorf("%w: a %s campaign cannot retry", ErrTransition, c.Status)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND `+retryable,
			id, math.MinInt32, opts.IncludeUnknown, math.MaxInt32).Scan(&queued); err != nil {
			return fmt.Errorf("campaigns: count retries: %w", err)
		}
		if queued == 0 {
			return nil
		}
		var round int
		if err := tx.QueryRow(ctx, `UPDATE campaigns SET next_batch = next_batch + 1 WHERE id = $1 RETURNING next_batch`, id).Scan(&round); err != nil {
			return fmt.Errorf("campaigns: number retry round: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO campaign_retries (campaign_id, round, include_unknown) VALUES ($1, $2, $3)`,
			id, round, opts.IncludeUnknown); err != nil {
			return fmt.Errorf("campaigns: insert retry round: %w", err)
		}
		if _, err := s.river.InsertTx(ctx, tx, RetryArgs{CampaignID: id, Round: round}, nil); err != nil {
			return fmt.Errorf("campaigns: insert retry job: %w", err)
		}
		return recordChange(ctx, tx, actor, "campaign.retry_failed", id, map[string]any{"round": round, "devices": queued,
			"include_unknown": opts.IncludeUnknown})
	})
	return queued, err
}

// ErrRetryNotFound is returned for a retry job whose round does not exist.
var ErrRetryNotFound = errors.New("campaigns: retry round not found")

// Work implements river.Worker. Rows move from failed to claimed in the same
// statement that picks them, so no two rounds take the same device. A round
// honours pause (it parks), cancel, the process draining and its deadline,
// between slices, like a batch.
func (w *RetryWorker) Work(ctx context.Context, job *river.Job[RetryArgs]) error {
	s, a := w.Service, job.Args
	var state string
	var generation int
	var includeUnknown bool
	err := s.pool.QueryRow(ctx, `SELECT state, generation, include_unknown FROM campaign_retries WHERE campaign_id = $1 AND round = $2`,
		a.CampaignID, a.Round).Scan(&state, &generation, &includeUnknown)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("%w: campaign %d round %d", ErrRetryNotFound, a.CampaignID, a.Round))
	}
	if err != nil {
		return fmt.Errorf("campaigns: read retry round: %w", err)
	}
	if state != "pending" {
		if err := s.markUnknown(ctx, a.CampaignID, -a.Round); err != nil {
			return err
		}
	}
	if state != "pending" || generation != a.Gen {
		return nil
	}
	c, err := s.Get(ctx, a.CampaignID)
	if err != nil {
		return err
	}
	switch c.Status {
	case StatusRunning, StatusFinished:
	case StatusPaused:
		return s.parkRetry(ctx, a)
	default:
		return s.endRetry(ctx, a, "cancelled")
	}
	batch := -a.Round // retried rows carry the round as a negative batch
	if err := s.markUnknown(ctx, a.CampaignID, batch); err != nil {
		return err
	}
	q, err := s.audience(ctx, s.pool, c.AppID, &c.Audience)
	if err != nil {
		return err
	}
	run, err := s.newSendRun(ctx, c, q, batch, s.now())
	if err != nil {
		return err
	}
	run.finishedIsRunning = true
	pick := func(ctx context.Context) (int, error) {
		n, _, err := run.reclaimAndSend(ctx, retryable, includeUnknown, math.MaxInt32)
		return n, err
	}
	finished, err := run.drive(ctx, pick, func() error { return s.parkRetry(ctx, a) },
		func() error { return s.endRetry(ctx, a, "cancelled") })
	if !finished || err != nil {
		return err
	}
	if err := s.endRetry(ctx, a, "done"); err != nil {
		return err
	}
	return s.finishIfDone(ctx, a.CampaignID)
}

// parkRetry parks a round of a paused campaign; Resume queues it again.
func (s *Service) parkRetry(ctx context.Context, a RetryArgs) error {
	tag, err := s.pool.Exec(ctx, `
		WITH c AS (SELECT id FROM campaigns WHERE id = $1 AND status = 'paused' FOR SHARE)
		UPDATE campaign_retries r SET state = 'parked'
		FROM c WHERE r.campaign_id = c.id AND r.round = $2 AND r.state = 'pending' AND r.generation = $3`,
		a.CampaignID, a.Round, a.Gen)
	if err != nil {
		return fmt.Errorf("campaigns: park retry round %d of campaign %d: %w", a.Round, a.CampaignID, err)
	}
	if tag.RowsAffected() == 0 {
		return river.JobSnooze(0)
	}
	return nil
}

func (s *Service) endRetry(ctx context.Context, a RetryArgs, state string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE campaign_retries SET state = $3
		WHERE campaign_id = $1 AND round = $2 AND state IN ('pending', 'parked')`, a.CampaignID, a.Round, state); err != nil {
		return fmt.Errorf("campaigns: end retry round %d of campaign %d: %w", a.Round, a.CampaignID, err)
	}
	return nil
}
