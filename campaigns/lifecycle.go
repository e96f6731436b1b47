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

// schedulerLead starts a wave's fan-out this long before its send time:
// River promotes scheduled jobs every 5 s, which leaves the fan-out at least
// 5 s to cut its first batches, and batches wait for the exact moment
// themselves, so the first message leaves on time.
const schedulerLead = 10 * time.Second

// runAt schedules a job for t. River files any job with a ScheduledAt as
// scheduled, to be promoted by its next scheduler pass (every 5 s), even when
// t has passed; so a time that has come gets no ScheduledAt and runs at once.
func runAt(t, now time.Time) *river.InsertOpts {
	if !t.After(now) {
		return &river.InsertOpts{}
	}
	return &river.InsertOpts{ScheduledAt: t}
}

// wave is one part of the audience with one send time.
type wave struct {
	timezone *string
	sendAt   time.Time
}

// plan computes a campaign's waves: one for everyone, or one per time zone
// when the schedule is in local time or has quiet hours.
func (s *Service) plan(ctx context.Context, tx pgx.Tx, c *Campaign) ([]wave, error) {
	sch := c.Schedule
	now := s.now()
	base := now
	if sch.Mode == "at" && sch.At.After(now) {
		base = *sch.At
	}
	if sch.Mode != "local" && sch.QuietHours == nil {
		return []wave{{sendAt: base}}, nil
	}
	q, err := s.audience(ctx, tx, c.AppID, &c.Audience)
	if err != nil {
		return nil, err
	}
	// The rest of the scheduling transaction writes a few rows; only this
	// query reads the whole audience (see wholeAudience).
	if err := robustPlans(ctx, tx); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT s.timezone `+q.from, q.params()...)
	if err != nil {
		return nil, fmt.Errorf("campaigns: time zones: %w", err)
	}
	zones, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("campaigns: time zones: %w", err)
	}
	var waves []wave
	for _, tz := range zones {
		name := tz
		if name == "" {
			name = sch.DefaultTimezone
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			// Zones are checked when saved; one this build's zone database
			// does not know is sent on UTC's clock rather than not at all.
			s.logger.Warn("unknown time zone in a campaign's audience; using UTC", "campaign_id", c.ID, "timezone", name, "error", err)
			loc = time.UTC
		}
		at := base
		if sch.Mode == "local" {
			at, err = time.ParseInLocation("2006-01-02 15:04", sch.LocalDate+" "+sch.LocalTime, loc)
			if err != nil {
				return nil, err
			}
			if at.Before(now) {
				at = now // that zone's moment has passed: send now
			}
		}
		if sch.QuietHours != nil {
			at = afterQuietHours(at.In(loc), *sch.QuietHours)
		}
		waves = append(waves, wave{timezone: &tz, sendAt: at.UTC()})
	}
	return waves, nil
}

// afterQuietHours moves t to the end of the quiet window it falls in, in
// t's location; windows may span midnight (22:00-08:00).
func afterQuietHours(t time.Time, q QuietHours) time.Time {
	clock := func(day time.Time, hhmm string) time.Time {
		h, m := int(hhmm[0]-'0')*10+int(hhmm[1]-'0'), int(hhmm[3]-'0')*10+int(hhmm[4]-'0')
		return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, day.Location())
	}
	for _, day := range []time.Time{t.AddDate(0, 0, -1), t} {
		start, end := clock(day, q.Start), clock(day, q.End)
		if !end.After(start) {
			end = end.AddDate(0, 0, 1)
		}
		if !t.Before(start) && t.Before(end) {
			return end
		}
	}
	return t
}

// ScheduleCampaign moves a draft to scheduled: it plans the waves and inserts
// their start jobs in the same transaction as the status change.
func (s *Service) ScheduleCampaign(ctx context.Context, actor audit.Actor, id int64) (*Campaign, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getCampaign(ctx, tx, id, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if !canMove(c.Status, StatusScheduled) || c.Status != StatusDraft {
			return fmt.Errorf("%w: only a draft can be scheduled (this one is %s)", ErrTransition, c.Status)
		}
		waves, err := s.plan(ctx, tx, c)
		if err != nil {
			return err
		}
		first := s.now()
		var jobs []river.InsertManyParams
		for i, w := range waves {
			if _, err := tx.Exec(ctx, `INSERT INTO campaign_waves (campaign_id, wave, timezone, send_at) VALUES ($1, $2, $3, $4)`,
				id, i, w.timezone, w.sendAt); err != nil {
				return fmt.Errorf("campaigns: insert wave: %w", err)
			}
			if i == 0 || w.sendAt.Before(first) {
				first = w.sendAt
			}
			jobs = append(jobs, river.InsertManyParams{Args: StartArgs{CampaignID: id, Wave: i},
				InsertOpts: runAt(w.sendAt.Add(-schedulerLead), s.now())})
		}
		if len(jobs) > 0 {
			if _, err := s.river.InsertManyTx(ctx, tx, jobs); err != nil {
				return fmt.Errorf("campaigns: insert start jobs: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'scheduled', scheduled_at = $2, updated_at = now() WHERE id = $1`, id, first); err != nil {
			return fmt.Errorf("campaigns: schedule %d: %w", id, err)
		}
		return recordChange(ctx, tx, actor, "campaign.schedule", id, map[string]any{"waves": len(waves)})
	})
	if err != nil {
		return nil, err
	}
	if err := s.finishIfDone(ctx, id); err != nil { // an audience with no time zones at all
		return nil, err
	}
	return s.Get(ctx, id)
}

// Pause stops a campaign: running batches see it between slices (within a
// slice's sending time) and park; parked batches hold no worker. Resume
// continues where it stopped; Cancel stops for good.
func (s *Service) Pause(ctx context.Context, actor audit.Actor, id int64) (*Campaign, error) {
	return s.move(ctx, actor, "campaign.pause", id, StatusPaused, `paused_at = now()`)
}

// Resume continues a paused campaign: in the same transaction as the status
// change it queues the next generation of every parked fan-out, batch and
// retry round, so they run again within River's fetch interval.
func (s *Service) Resume(ctx context.Context, actor audit.Actor, id int64) (*Campaign, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getCampaign(ctx, tx, id, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if c.Status != StatusPaused {
			return fmt.Errorf("%w: only a paused campaign can resume (this one is %s)", ErrTransition, c.Status)
		}
		to := StatusScheduled
		if c.StartedAt != nil {
			to = StatusRunning
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, paused_at = NULL, updated_at = now() WHERE id = $1`, id, to); err != nil {
			return fmt.Errorf("campaigns: resume %d: %w", id, err)
		}
		jobs, err := s.unpark(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(jobs) > 0 {
			if _, err := s.river.InsertManyTx(ctx, tx, jobs); err != nil {
				return fmt.Errorf("campaigns: queue parked work of %d: %w", id, err)
			}
		}
		return recordChange(ctx, tx, actor, "campaign.resume", id, map[string]any{"status": to})
	})
	if err != nil {
		return nil, err
	}
	// The last batch may have finished while the campaign was paused.
	if err := s.finishIfDone(ctx, id); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// unpark moves a campaign's parked fan-outs, batches and retry rounds to
// their next generation and returns the jobs that run them.
func (s *Service) unpark(ctx context.Context, tx pgx.Tx, id int64) ([]river.InsertManyParams, error) {
	var jobs []river.InsertManyParams
	rows, err := tx.Query(ctx, `UPDATE campaign_waves SET parked = false, generation = generation + 1
		WHERE campaign_id = $1 AND parked RETURNING wave, generation, send_at`, id)
	if err != nil {
		return nil, fmt.Errorf("campaigns: unpark waves: %w", err)
	}
	type wave struct {
		n, gen int
		at     time.Time
	}
	waves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wave, error) {
		var w wave
		return w, r.Scan(&w.n, &w.gen, &w.at)
	})
	if err != nil {
		return nil, fmt.Errorf("campaigns: unpark waves: %w", err)
	}
	for _, w := range waves {
		jobs = append(jobs, river.InsertManyParams{Args: StartArgs{CampaignID: id, Wave: w.n, Gen: w.gen},
			InsertOpts: runAt(w.at.Add(-schedulerLead), s.now())})
	}
	rows, err = tx.Query(ctx, `UPDATE campaign_batches SET state = 'pending', generation = generation + 1
		WHERE campaign_id = $1 AND state = 'parked' RETURNING batch, generation, platform`, id)
	if err != nil {
		return nil, fmt.Errorf("campaigns: unpark batches: %w", err)
	}
	type batch struct {
		n, gen   int
		platform delivery.Platform
	}
	batches, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (batch, error) {
		var b batch
		return b, r.Scan(&b.n, &b.gen, &b.platform)
	})
	if err != nil {
		return nil, fmt.Errorf("campaigns: unpark batches: %w", err)
	}
	for _, b := range batches {
		jobs = append(jobs, river.InsertManyParams{Args: BatchArgs{CampaignID: id, Batch: b.n, Gen: b.gen},
			InsertOpts: &river.InsertOpts{Queue: QueueFor(b.platform)}})
	}
	rows, err = tx.Query(ctx, `UPDATE campaign_retries SET state = 'pending', generation = generation + 1
		WHERE campaign_id = $1 AND state = 'parked' RETURNING round, generation`, id)
	if err != nil {
		return nil, fmt.Errorf("campaigns: unpark retry rounds: %w", err)
	}
	rounds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int, error) {
		var v [2]int
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		return nil, fmt.Errorf("campaigns: unpark retry rounds: %w", err)
	}
	for _, r := range rounds {
		jobs = append(jobs, river.InsertManyParams{Args: RetryArgs{CampaignID: id, Round: r[0], Gen: r[1]}})
	}
	return jobs, nil
}

// Cancel ends a campaign for good; what was sent stays recorded. Open
// batches and retry rounds are closed in the same transaction; a batch
// that is sending stops at its next slice.
func (s *Service) Cancel(ctx context.Context, actor audit.Actor, id int64) (*Campaign, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := moveTx(ctx, tx, id, StatusCancelled, `finished_at = now()`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE campaign_batches SET state = 'cancelled' WHERE campaign_id = $1 AND state IN ('pending', 'parked')`, id); err != nil {
			return fmt.Errorf("campaigns: cancel batches of %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaign_retries SET state = 'cancelled' WHERE campaign_id = $1 AND state IN ('pending', 'parked')`, id); err != nil {
			return fmt.Errorf("campaigns: cancel retry rounds of %d: %w", id, err)
		}
		return recordChange(ctx, tx, actor, "campaign.cancel", id, nil)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

func (s *Service) move(ctx context.Context, actor audit.Actor, action string, id int64, to Status, set string) (*Campaign, error) {
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := moveTx(ctx, tx, id, to, set); err != nil {
			return err
		}
		return recordChange(ctx, tx, actor, action, id, nil)
	}); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

func moveTx(ctx context.Context, tx pgx.Tx, id int64, to Status, set string) error {
	c, err := getCampaign(ctx, tx, id, "FOR UPDATE OF c")
	if err != nil {
		return err
	}
	if !canMove(c.Status, to) {
		return fmt.Errorf("%w: %s cannot become %s", ErrTransition, c.Status, to)
	}
	if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now(), `+set+` WHERE id = $1`, id, to); err != nil {
		return fmt.Errorf("campaigns: %s %d: %w", to, id, err)
	}
	return nil
}

// fail marks a running campaign failed, e.g. when credentials are refused.
func (s *Service) fail(ctx context.Context, id int64, reason string) error {
	var failed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'failed', failure_reason = $2, finished_at = now(), updated_at = now()
			WHERE id = $1 AND status IN ('running', 'scheduled', 'paused')`, id, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		failed = true
		return recordChange(ctx, tx, audit.System("campaign sender"), "campaign.fail", id, map[string]any{"reason": reason})
	})
	if err != nil {
		return fmt.Errorf("campaigns: fail %d: %w", id, err)
	}
	if failed {
		s.logger.Error("campaign failed", "campaign_id", id, "reason", reason)
	}
	return nil
}

// finishIfDone marks a campaign finished once every wave is fanned out and
// no batch or retry round is open. Its error is returned like any other: the job that
// called it runs again, and the reconciler finishes what no job will.
func (s *Service) finishIfDone(ctx context.Context, id int64) error {
	var finished bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'finished', finished_at = now(), updated_at = now()
			WHERE id = $1 AND status IN ('running', 'scheduled')
			AND NOT EXISTS (SELECT 1 FROM campaign_waves WHERE campaign_id = $1 AND NOT fanned_out)
			AND NOT EXISTS (SELECT 1 FROM campaign_batches WHERE campaign_id = $1 AND state IN ('pending', 'parked'))
			AND NOT EXISTS (SELECT 1 FROM campaign_retries WHERE campaign_id = $1 AND state IN ('pending', 'parked'))`, id)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		finished = true
		return recordChange(ctx, tx, audit.System("campaign scheduler"), "campaign.finish", id, nil)
	})
	if err != nil {
		return fmt.Errorf("campaigns: finish %d: %w", id, err)
	}
	if finished {
		s.logger.Info("campaign finished", "campaign_id", id)
	}
	return nil
}
