package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// BatchArgs sends one batch of a campaign.
type BatchArgs struct {
	CampaignID int64 `json:"campaign_id"`
	Batch      int   `json:"batch"`
	// Gen is the batch's generation: a parked batch, or one whose job ended
	// while the batch was still open, is queued again with the next one. A
	// job of an older generation does nothing.
	Gen int `json:"gen,omitempty"`
}

// Kind implements river.JobArgs.
func (BatchArgs) Kind() string { return "campaigns.batch" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique per (campaign,
// batch, generation), so a batch is never queued twice.
func (BatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCampaigns, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// BatchWorker runs BatchArgs.
type BatchWorker struct {
	river.WorkerDefaults[BatchArgs]
	Service *Service
}

// batchRow is a campaign_batches row with its wave's timing.
type batchRow struct {
	wave       int
	platform   string
	after      int64
	upto       int64
	state      string
	generation int
	timezone   *string
	sendAt     time.Time
}

// ErrBatchNotFound is returned for a batch job whose batch row does not exist.
var ErrBatchNotFound = errors.New("campaigns: batch not found")

func (s *Service) readBatch(ctx context.Context, campaignID int64, batch int) (*batchRow, error) {
	var b batchRow
	err := s.pool.QueryRow(ctx, `
		SELECT b.wave, b.platform, b.after_id, b.upto_id, b.state, b.generation, w.timezone, w.send_at
		FROM campaign_batches b
		JOIN campaign_waves w ON w.campaign_id = b.campaign_id AND w.wave = b.wave
		WHERE b.campaign_id = $1 AND b.batch = $2`,
		campaignID, batch).Scan(&b.wave, &b.platform, &b.after, &b.upto, &b.state, &b.generation, &b.timezone, &b.sendAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: campaign %d batch %d", ErrBatchNotFound, campaignID, batch)
	}
	if err != nil {
		return nil, fmt.Errorf("campaigns: read batch %d of campaign %d: %w", batch, campaignID, err)
	}
	return &b, nil
}

// Work implements river.Worker. A batch claims a slice of its devices,
// sends, records, and claims the next; then it resends what ended unknown
// (when the campaign says so) and what the provider throttled, when the
// provider's time comes. Between slices it yields to a pause (parks), a
// cancel, the process draining and its own deadline.
func (w *BatchWorker) Work(ctx context.Context, job *river.Job[BatchArgs]) error {
	s, a := w.Service, job.Args
	b, err := s.readBatch(ctx, a.CampaignID, a.Batch)
	if errors.Is(err, ErrBatchNotFound) {
		// Batch rows go only with their campaign; a job without one has
		// nothing to do, and retrying would not change that.
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if b.state != "pending" {
		// A run that died after the batch was closed (cancelled, say) left
		// its claims: they are unknown, and nothing else would say so.
		if err := s.markUnknown(ctx, a.CampaignID, a.Batch); err != nil {
			return err
		}
	}
	if b.state == "done" {
		// An earlier run closed the batch and then failed to finish the
		// campaign; try again (the reconciler would, later).
		return s.finishIfDone(ctx, a.CampaignID)
	}
	if b.state != "pending" || b.generation != a.Gen {
		return nil // cancelled, parked, or a later generation owns it
	}
	c, err := s.Get(ctx, a.CampaignID)
	if err != nil {
		return err
	}
	switch c.Status {
	case StatusRunning:
	case StatusPaused:
		return s.parkBatch(ctx, a)
	case StatusScheduled:
		// Batches exist once a campaign runs; a scheduled one was paused
		// and resumed before it started. Its start job runs it again.
		return river.JobSnooze(time.Second)
	default:
		return s.cancelBatch(ctx, a)
	}
	// Fan-out starts a little early; the message leaves at its moment.
	if wait := b.sendAt.Sub(s.now()); wait > 0 {
		if wait > 10*time.Second {
			return river.JobSnooze(wait)
		}
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
		if s.isDraining() {
			return river.JobSnooze(0)
		}
	}
	// Whatever an earlier run of this batch claimed and did not record was
	// cut off mid-send (a crash, a lost database connection): it may or may
	// not have arrived. Say so; the resend phase below decides what is sent
	// again.
	if err := s.markUnknown(ctx, a.CampaignID, a.Batch); err != nil {
		return err
	}
	q, err := s.audience(ctx, s.pool, c.AppID, &c.Audience)
	if err != nil {
		return err
	}
	q = q.and("d.id > %s", b.after).and("d.id <= %s", b.upto).and("d.platform = %s", b.platform)
	if b.timezone != nil {
		q = q.and("s.timezone = %s", *b.timezone)
	}
	run, err := s.newSendRun(ctx, c, q, a.Batch, b.sendAt)
	if err != nil {
		return err
	}
	run.acrossBatches = b.timezone != nil
	finished, err := run.drive(ctx, run.claimAndSend, func() error { return s.parkBatch(ctx, a) },
		func() error { return s.cancelBatch(ctx, a) })
	if !finished || err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `UPDATE campaign_batches SET state = 'done'
		WHERE campaign_id = $1 AND batch = $2 AND state = 'pending' AND generation = $3`,
		a.CampaignID, a.Batch, a.Gen); err != nil {
		return fmt.Errorf("campaigns: finish batch %d of campaign %d: %w", a.Batch, a.CampaignID, err)
	}
	return s.finishIfDone(ctx, a.CampaignID)
}

// parkBatch parks a batch of a paused campaign: its job ends and Resume
// queues the batch's next generation. The campaign row is share-locked so
// that a Resume committing at the same moment either sees the parked batch
// or makes this statement see the campaign running (and park nothing).
func (s *Service) parkBatch(ctx context.Context, a BatchArgs) error {
	tag, err := s.pool.Exec(ctx, `
		WITH c AS (SELECT id FROM campaigns WHERE id = $1 AND status = 'paused' FOR SHARE)
		UPDATE campaign_batches b SET state = 'parked'
		FROM c WHERE b.campaign_id = c.id AND b.batch = $2 AND b.state = 'pending' AND b.generation = $3`,
		a.CampaignID, a.Batch, a.Gen)
	if err != nil {
		return fmt.Errorf("campaigns: park batch %d of campaign %d: %w", a.Batch, a.CampaignID, err)
	}
	if tag.RowsAffected() == 0 {
		// Resumed (or cancelled) in the meantime: look again at once.
		return river.JobSnooze(0)
	}
	s.logger.Debug("batch parked", "campaign_id", a.CampaignID, "batch", a.Batch)
	return nil
}

// cancelBatch closes a batch of a campaign that was cancelled, failed or
// finished.
func (s *Service) cancelBatch(ctx context.Context, a BatchArgs) error {
	if _, err := s.pool.Exec(ctx, `UPDATE campaign_batches SET state = 'cancelled'
		WHERE campaign_id = $1 AND batch = $2 AND state IN ('pending', 'parked')`, a.CampaignID, a.Batch); err != nil {
		return fmt.Errorf("campaigns: cancel batch %d of campaign %d: %w", a.Batch, a.CampaignID, err)
	}
	return nil
}

// markUnknown turns the claims an earlier run left unrecorded into unknown
// outcomes.
func (s *Service) markUnknown(ctx context.Context, campaignID int64, batch int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET status = 'unknown', outcome = 'unknown',
			reason = 'the sending process stopped before the outcome was recorded', finished_at = now()
		WHERE campaign_id = $1 AND batch = $2 AND status = 'claimed'`, campaignID, batch)
	if err != nil {
		return fmt.Errorf("campaigns: mark unknown: %w", err)
	}
	n := tag.RowsAffected()
	// Slices a stopped run claimed and never recorded: their devices become
	// unknown delivery rows in the statement that deletes the slices, so a
	// run that is still recording one finds it gone and writes nothing.
	tag, err = s.pool.Exec(ctx, `
		WITH sl AS (
			DELETE FROM campaign_slices WHERE campaign_id = $1 AND batch = $2
			RETURNING batch, platform, token, device_ids, subscriber_ids, claimed_at
		)
		INSERT INTO deliveries (campaign_id, device_id, subscriber_id, batch, platform, status, outcome, reason,
			claimed_at, finished_at, claim_token)
		SELECT $1, u.device_id, u.subscriber_id, sl.batch, sl.platform, 'unknown', 'unknown',
			'the sending process stopped before the outcome was recorded', sl.claimed_at, now(), sl.token
		FROM sl CROSS JOIN unnest(sl.device_ids, sl.subscriber_ids) AS u(device_id, subscriber_id)
		ON CONFLICT (campaign_id, device_id) DO NOTHING`, campaignID, batch)
	if err != nil {
		return fmt.Errorf("campaigns: mark unknown: %w", err)
	}
	if n += tag.RowsAffected(); n > 0 {
		s.logger.Warn("claims of a stopped run marked unknown", "campaign_id", campaignID, "batch", batch, "count", n)
	}
	return nil
}
