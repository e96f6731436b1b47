package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
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
func (s *Service) ScheduleCampaign(ctx context.Context, id int64) (*Campaign, error) {
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
		_, err = tx.Exec(ctx, `UPDATE campaigns SET status = 'scheduled', scheduled_at = $2, updated_at = now() WHERE id = $1`, id, first)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.finishIfDone(ctx, id); err != nil { // an audience with no time zones at all
		return nil, err
	}
	return s.Get(ctx, id)
}

// Pause stops new batches: running batch jobs see it before they claim and
// wait. Resume continues where it stopped; Cancel stops for good.
func (s *Service) Pause(ctx context.Context, id int64) (*Campaign, error) {
	return s.move(ctx, id, StatusPaused, `paused_at = now()`)
}

// Resume continues a paused campaign.
func (s *Service) Resume(ctx context.Context, id int64) (*Campaign, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status != StatusPaused {
		return nil, fmt.Errorf("%w: only a paused campaign can resume (this one is %s)", ErrTransition, c.Status)
	}
	to := StatusScheduled
	if c.StartedAt != nil {
		to = StatusRunning
	}
	return s.move(ctx, id, to, `paused_at = NULL`)
}

// Cancel ends a campaign for good; what was sent stays recorded.
func (s *Service) Cancel(ctx context.Context, id int64) (*Campaign, error) {
	c, err := s.move(ctx, id, StatusCancelled, `finished_at = now()`)
	if err != nil {
		return nil, err
	}
	_, err = s.pool.Exec(ctx, `UPDATE campaign_batches SET state = 'cancelled' WHERE campaign_id = $1 AND state = 'pending'`, id)
	return c, err
}

func (s *Service) move(ctx context.Context, id int64, to Status, set string) (*Campaign, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getCampaign(ctx, tx, id, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if !canMove(c.Status, to) {
			return fmt.Errorf("%w: %s cannot become %s", ErrTransition, c.Status, to)
		}
		_, err = tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now(), `+set+` WHERE id = $1`, id, to)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// fail marks a running campaign failed, e.g. when credentials are refused.
func (s *Service) fail(ctx context.Context, id int64, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE campaigns SET status = 'failed', failure_reason = $2, finished_at = now(), updated_at = now()
		WHERE id = $1 AND status IN ('running', 'scheduled', 'paused')`, id, reason)
	if err == nil {
		s.logger.Error("campaign failed", "campaign_id", id, "reason", reason)
	}
	return err
}

// finishIfDone marks a campaign finished once every wave is fanned out and
// every batch is done.
func (s *Service) finishIfDone(ctx context.Context, id int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE campaigns SET status = 'finished', finished_at = now(), updated_at = now()
		WHERE id = $1 AND status IN ('running', 'scheduled')
		AND NOT EXISTS (SELECT 1 FROM campaign_waves WHERE campaign_id = $1 AND NOT fanned_out)
		AND NOT EXISTS (SELECT 1 FROM campaign_batches WHERE campaign_id = $1 AND state = 'pending')`, id)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("campaigns: finish: %w", err)
	}
	return nil
}
