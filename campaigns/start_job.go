package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/delivery"
)

// StartArgs fans out one wave of a campaign.
type StartArgs struct {
	CampaignID int64 `json:"campaign_id"`
	Wave       int   `json:"wave"`
	// Gen is the wave's generation: a fan-out parked by a pause is queued
	// again with the next one.
	Gen int `json:"gen,omitempty"`
}

// Kind implements river.JobArgs.
func (StartArgs) Kind() string { return "campaigns.start" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (StartArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCampaigns, MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// StartWorker runs StartArgs.
type StartWorker struct {
	river.WorkerDefaults[StartArgs]
	Service *Service
}

// batchesPerPage is how many batch jobs one fan-out transaction inserts.
const batchesPerPage = 50

var errStopFanout = errors.New("campaign is not running")

// Work implements river.Worker.
func (w *StartWorker) Work(ctx context.Context, job *river.Job[StartArgs]) error {
	s, a := w.Service, job.Args
	var generation int
	var fanned bool
	err := s.pool.QueryRow(ctx, `SELECT generation, fanned_out FROM campaign_waves WHERE campaign_id = $1 AND wave = $2`,
		a.CampaignID, a.Wave).Scan(&generation, &fanned)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("campaigns: campaign %d has no wave %d", a.CampaignID, a.Wave))
	}
	if err != nil {
		return fmt.Errorf("campaigns: read wave: %w", err)
	}
	if generation != a.Gen {
		return nil // a later generation of this fan-out owns it
	}
	status, err := s.begin(ctx, a.CampaignID)
	if err != nil {
		return err
	}
	if status == StatusRunning {
		// Its batches write into it; a draft older than the retention
		// period may have lost it.
		if err := ensurePartitions(ctx, s.pool, a.CampaignID); err != nil {
			return err
		}
	}
	switch status {
	case StatusPaused:
		return s.parkWave(ctx, a)
	case StatusRunning:
	default:
		return nil // cancelled, failed or finished
	}
	for page := 0; ; page++ {
		if s.isDraining() {
			return river.JobSnooze(0) // the next page is cut by another process, or after the restart
		}
		done, err := s.fanOutPage(ctx, a.CampaignID, a.Wave)
		if errors.Is(err, errStopFanout) {
			st, err := s.status(ctx, a.CampaignID)
			if err != nil {
				return err
			}
			if st == StatusPaused {
				return s.parkWave(ctx, a)
			}
			return nil
		}
		if err != nil {
			return err
		}
		// Counting a large audience takes seconds; the first batches are
		// already waiting for their moment while it runs.
		if page == 0 {
			if err := s.countAudience(ctx, a.CampaignID); err != nil {
				return err
			}
		}
		if done {
			return s.finishIfDone(ctx, a.CampaignID)
		}
	}
}

// parkWave parks a wave's fan-out while its campaign is paused; Resume
// queues it again. See parkBatch for the lock.
func (s *Service) parkWave(ctx context.Context, a StartArgs) error {
	tag, err := s.pool.Exec(ctx, `
		WITH c AS (SELECT id FROM campaigns WHERE id = $1 AND status = 'paused' FOR SHARE)
		UPDATE campaign_waves w SET parked = true
		FROM c WHERE w.campaign_id = c.id AND w.wave = $2 AND w.generation = $3 AND NOT w.fanned_out`,
		a.CampaignID, a.Wave, a.Gen)
	if err != nil {
		return fmt.Errorf("campaigns: park wave %d of campaign %d: %w", a.Wave, a.CampaignID, err)
	}
	if tag.RowsAffected() == 0 {
		st, err := s.status(ctx, a.CampaignID)
		if err != nil {
			return err
		}
		if st == StatusPaused {
			return nil // fanned out already: nothing to park
		}
		return river.JobSnooze(0) // resumed meanwhile: look again
	}
	return nil
}

// begin moves a scheduled campaign to running and takes its audience
// snapshot (the highest device id now) the first time any wave starts.
func (s *Service) begin(ctx context.Context, id int64) (Status, error) {
	var status Status
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var started bool
		err := tx.QueryRow(ctx, `UPDATE campaigns SET
				status = CASE WHEN status = 'scheduled' THEN 'running' ELSE status END,
				started_at = coalesce(started_at, now()),
				audience_bound = coalesce(audience_bound, (SELECT coalesce(max(id), 0) FROM devices)),
				updated_at = now()
			WHERE id = $1 AND status IN ('scheduled', 'running')
			RETURNING status, started_at = now()`, id).Scan(&status, &started)
		if err != nil {
			return err
		}
		if !started {
			return nil
		}
		// The first wave's start: the event webhooks and live views wait for.
		return recordChange(ctx, tx, audit.System("campaign scheduler"), "campaign.start", id, nil)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return s.status(ctx, id)
	}
	if err != nil {
		return "", fmt.Errorf("campaigns: start: %w", err)
	}
	return status, nil
}

func (s *Service) status(ctx context.Context, id int64) (Status, error) {
	var st Status
	err := s.pool.QueryRow(ctx, `SELECT status FROM campaigns WHERE id = $1`, id).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("campaigns: status of %d: %w", id, err)
	}
	return st, nil
}

// fanOutPage inserts up to batchesPerPage batch jobs for the next stretch of
// a wave's audience, and advances the wave's cursor, in one transaction.
func (s *Service) fanOutPage(ctx context.Context, campaignID int64, waveNo int) (bool, error) {
	done := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getCampaign(ctx, tx, campaignID, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if c.Status != StatusRunning {
			return errStopFanout
		}
		var bound, cursor int64
		var tz *string
		var sendAt time.Time
		var fanned bool
		var batchesInWave int
		if err := tx.QueryRow(ctx, `SELECT c.audience_bound, w.cursor, w.timezone, w.send_at, w.fanned_out, w.batches
			FROM campaign_waves w JOIN campaigns c ON c.id = w.campaign_id
			WHERE w.campaign_id = $1 AND w.wave = $2 FOR UPDATE OF w`, campaignID, waveNo).
			Scan(&bound, &cursor, &tz, &sendAt, &fanned, &batchesInWave); err != nil {
			return fmt.Errorf("campaigns: read wave: %w", err)
		}
		if fanned {
			done = true
			return nil
		}
		q, err := s.audience(ctx, tx, c.AppID, &c.Audience)
		if err != nil {
			return err
		}
		q = q.and("d.id > %s", cursor).and("d.id <= %s", bound)
		if tz != nil {
			q = q.and("s.timezone = %s", *tz)
		}
		size := s.batchSize(c)
		limit := size * batchesPerPage
		rows, err := tx.Query(ctx, `SELECT d.id, d.platform `+q.from+fmt.Sprintf(` ORDER BY d.id LIMIT %d`, limit), q.params()...)
		if err != nil {
			return fmt.Errorf("campaigns: page audience: %w", err)
		}
		type idPlatform struct {
			id       int64
			platform delivery.Platform
		}
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idPlatform, error) {
			var v idPlatform
			return v, r.Scan(&v.id, &v.platform)
		})
		if err != nil {
			return fmt.Errorf("campaigns: page audience: %w", err)
		}
		done = len(page) < limit
		if len(page) == 0 {
			if _, err := tx.Exec(ctx, `UPDATE campaign_waves SET fanned_out = true WHERE campaign_id = $1 AND wave = $2`, campaignID, waveNo); err != nil {
				return fmt.Errorf("campaigns: finish fan-out: %w", err)
			}
			return nil
		}
		// Split the page by platform; each platform's ids are cut into
		// batches whose range (after, upto] is read with that platform only.
		byPlatform := map[delivery.Platform][]int64{}
		for _, v := range page {
			byPlatform[v.platform] = append(byPlatform[v.platform], v.id)
		}
		type cut struct {
			platform    delivery.Platform
			after, upto int64
		}
		var cuts []cut
		for _, p := range []delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush} {
			ids := byPlatform[p]
			after := cursor
			for k := 0; k < len(ids); k += size {
				upto := ids[min(k+size, len(ids))-1]
				cuts = append(cuts, cut{p, after, upto})
				after = upto
			}
		}
		n := len(cuts)
		var first int
		if err := tx.QueryRow(ctx, `UPDATE campaigns SET next_batch = next_batch + $2 WHERE id = $1 RETURNING next_batch - $2`,
			campaignID, n).Scan(&first); err != nil {
			return fmt.Errorf("campaigns: number batches: %w", err)
		}
		batchNos, platforms, afters, uptos := make([]int, n), make([]string, n), make([]int64, n), make([]int64, n)
		jobs := make([]river.InsertManyParams, n)
		for k, ct := range cuts {
			batchNos[k], platforms[k], afters[k], uptos[k] = first+k, string(ct.platform), ct.after, ct.upto
			opts := &river.InsertOpts{}
			if c.ThrottlePerMinute != nil {
				// Spread batches so the campaign averages its throttle.
				offset := time.Duration(float64(batchesInWave+k) * float64(size) / float64(*c.ThrottlePerMinute) * float64(time.Minute))
				opts = runAt(sendAt.Add(offset), s.now())
			}
			opts.Queue = QueueFor(ct.platform)
			jobs[k] = river.InsertManyParams{Args: BatchArgs{CampaignID: campaignID, Batch: first + k}, InsertOpts: opts}
		}
		after := page[len(page)-1].id
		if _, err := tx.Exec(ctx, `INSERT INTO campaign_batches (campaign_id, batch, wave, platform, after_id, upto_id)
			SELECT $1, b, $2, p, a, u FROM unnest($3::int[], $4::text[], $5::bigint[], $6::bigint[]) AS t(b, p, a, u)`,
			campaignID, waveNo, batchNos, platforms, afters, uptos); err != nil {
			return fmt.Errorf("campaigns: insert batches: %w", err)
		}
		if _, err := s.river.InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("campaigns: insert batch jobs: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaign_waves SET cursor = $3, fanned_out = $4, batches = batches + $5
			WHERE campaign_id = $1 AND wave = $2`, campaignID, waveNo, after, done, n); err != nil {
			return fmt.Errorf("campaigns: advance fan-out: %w", err)
		}
		return nil
	})
	return done, err
}

// batchSize keeps a throttled batch to about ten seconds of sending.
func (s *Service) batchSize(c *Campaign) int {
	size := s.cfg.BatchSize
	if t := c.ThrottlePerMinute; t != nil {
		size = max(1, min(size, *t/6))
	}
	return size
}

// countAudience records, once, how many devices the snapshot holds.
func (s *Service) countAudience(ctx context.Context, id int64) error {
	c, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	var bound int64
	var size *int64
	if err := s.pool.QueryRow(ctx, `SELECT audience_bound, audience_size FROM campaigns WHERE id = $1`, id).Scan(&bound, &size); err != nil {
		return fmt.Errorf("campaigns: read bound: %w", err)
	}
	if size != nil {
		return nil
	}
	var n int64
	err = s.wholeAudience(ctx, func(tx pgx.Tx) error {
		q, err := s.audience(ctx, tx, c.AppID, &c.Audience)
		if err != nil {
			return err
		}
		q = q.and("d.id <= %s", bound)
		if err := tx.QueryRow(ctx, `SELECT count(*) `+q.from, q.params()...).Scan(&n); err != nil {
			return fmt.Errorf("campaigns: count audience: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `UPDATE campaigns SET audience_size = $2 WHERE id = $1 AND audience_size IS NULL`, id, n); err != nil {
		return fmt.Errorf("campaigns: record audience size: %w", err)
	}
	return nil
}
