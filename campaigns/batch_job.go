package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// BatchArgs sends one batch of a campaign.
type BatchArgs struct {
	CampaignID int64 `json:"campaign_id"`
	Batch      int   `json:"batch"`
}

// Kind implements river.JobArgs.
func (BatchArgs) Kind() string { return "campaigns.batch" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique per (campaign,
// batch), so a batch is never queued twice.
func (BatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCampaigns, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// BatchWorker runs BatchArgs.
type BatchWorker struct {
	river.WorkerDefaults[BatchArgs]
	Service *Service
}

// claimed is a device claimed for sending.
type claimed struct {
	device       subscribers.Device
	subscriberID int64
	locale       string
}

// claimedColumns are what sending needs of a device and its subscriber, in
// scanClaimed's order.
const claimedColumns = `d.id, d.subscriber_id, d.app_id, d.platform, d.token, coalesce(d.apns_topic, '') AS apns_topic,
	coalesce(d.apns_environment, '') AS apns_environment, coalesce(d.webpush_p256dh, '') AS p256dh,
	coalesce(d.webpush_auth, '') AS auth, d.updated_at, s.locale`

func scanClaimed(r pgx.CollectableRow) (claimed, error) {
	var c claimed
	d := &c.device
	err := r.Scan(&d.ID, &d.SubscriberID, &d.AppID, &d.Platform, &d.Token, &d.APNsTopic, &d.APNsEnvironment,
		&d.P256dh, &d.Auth, &d.UpdatedAt, &c.locale)
	c.subscriberID = d.SubscriberID
	return c, err
}

// Work implements river.Worker.
func (w *BatchWorker) Work(ctx context.Context, job *river.Job[BatchArgs]) error {
	s, a := w.Service, job.Args
	var waveNo int
	var after, upto int64
	var state, platform string
	var tz *string
	var sendAt time.Time
	err := s.pool.QueryRow(ctx, `SELECT b.wave, b.platform, b.after_id, b.upto_id, b.state, w.timezone, w.send_at
		FROM campaign_batches b JOIN campaign_waves w ON w.campaign_id = b.campaign_id AND w.wave = b.wave
		WHERE b.campaign_id = $1 AND b.batch = $2`, a.CampaignID, a.Batch).Scan(&waveNo, &platform, &after, &upto, &state, &tz, &sendAt)
	if errors.Is(err, pgx.ErrNoRows) || state != "pending" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("campaigns: read batch: %w", err)
	}
	c, err := s.Get(ctx, a.CampaignID)
	if err != nil {
		return err
	}
	switch c.Status {
	case StatusRunning:
	case StatusPaused, StatusScheduled:
		return river.JobSnooze(time.Second)
	default:
		_, err := s.pool.Exec(ctx, `UPDATE campaign_batches SET state = 'cancelled' WHERE campaign_id = $1 AND batch = $2`, a.CampaignID, a.Batch)
		return err
	}
	// Fan-out starts a little early; the message leaves at its moment.
	if wait := sendAt.Sub(s.now()); wait > 0 {
		if wait > 10*time.Second {
			return river.JobSnooze(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	if job.Attempt > 1 {
		// An earlier attempt died between claiming and recording: those
		// devices may or may not have the message. Say so; never resend.
		if err := s.markUnknown(ctx, a.CampaignID, a.Batch); err != nil {
			return err
		}
	}
	q, err := s.audience(ctx, s.pool, c.AppID, &c.Audience)
	if err != nil {
		return err
	}
	q = q.and("d.id > %s", after).and("d.id <= %s", upto).and("d.platform = %s", platform)
	if tz != nil {
		q = q.and("s.timezone = %s", *tz)
	}
	run, err := s.newSendRun(ctx, c)
	if err != nil {
		return err
	}
	var lastSlice time.Duration
	for {
		// A batch that could not finish another slice before River's job
		// timeout yields and continues with a fresh one, instead of being
		// cut off mid-send.
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < 2*lastSlice+time.Second {
			return river.JobSnooze(time.Second)
		}
		started := time.Now()
		devices, err := s.claim(ctx, c.ID, a.Batch, q)
		if err != nil {
			return err
		}
		if len(devices) == 0 {
			break
		}
		if err := run.send(ctx, devices); err != nil {
			return err
		}
		lastSlice = time.Since(started)
		// Between slices, so that a pause or a cancel (or a failure the
		// slice itself found) holds within a slice's sending time.
		st, err := s.status(ctx, c.ID)
		if err != nil {
			return err
		}
		switch st {
		case StatusRunning:
		case StatusPaused:
			return river.JobSnooze(time.Second)
		default:
			_, err := s.pool.Exec(ctx, `UPDATE campaign_batches SET state = 'cancelled' WHERE campaign_id = $1 AND batch = $2`, a.CampaignID, a.Batch)
			return err
		}
	}
	if _, err := s.pool.Exec(ctx, `UPDATE campaign_batches SET state = 'done' WHERE campaign_id = $1 AND batch = $2 AND state = 'pending'`,
		a.CampaignID, a.Batch); err != nil {
		return fmt.Errorf("campaigns: finish batch: %w", err)
	}
	return s.finishIfDone(ctx, a.CampaignID)
}

func (s *Service) markUnknown(ctx context.Context, campaignID int64, batch int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET status = 'unknown', reason = 'the sending process stopped before the outcome was recorded',
		finished_at = now() WHERE campaign_id = $1 AND batch = $2 AND status = 'claimed'`, campaignID, batch)
	if err != nil {
		return fmt.Errorf("campaigns: mark unknown: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		s.logger.Warn("claimed deliveries of a crashed attempt marked unknown", "campaign_id", campaignID, "batch", batch, "count", n)
	}
	return nil
}

// ClaimSlice is how many devices a batch claims at a time. A batch claims,
// sends and records one slice before it claims the next, so a process killed
// mid-send leaves at most one slice per running batch with an unknown
// outcome, however large the batches are.
const ClaimSlice = 500

// claim inserts a delivery row for up to ClaimSlice audience devices of the
// batch that have none yet, and returns exactly the devices this call
// claimed; none when the batch is done. The rows are committed before
// anything is sent.
func (s *Service) claim(ctx context.Context, campaignID int64, batch int, q *audienceQuery) ([]claimed, error) {
	n := len(q.args)
	// One statement: what is claimed is exactly what is returned for sending.
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`WITH aud AS (
			SELECT %s %s AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.campaign_id = $%d AND x.device_id = d.id)
			ORDER BY d.id LIMIT %d
		),
		ins AS (
			INSERT INTO deliveries (campaign_id, device_id, subscriber_id, batch, platform, status)
			SELECT $%d, id, subscriber_id, $%d, platform, 'claimed' FROM aud
			ON CONFLICT (campaign_id, device_id) DO NOTHING
			RETURNING device_id
		)
		SELECT aud.* FROM aud JOIN ins ON ins.device_id = aud.id`, claimedColumns, q.from, n+1, ClaimSlice, n+1, n+2),
		q.params(campaignID, batch)...)
	if err != nil {
		return nil, fmt.Errorf("campaigns: claim: %w", err)
	}
	return pgx.CollectRows(rows, scanClaimed)
}

type groupKey struct {
	variant  string
	platform delivery.Platform
}

// sendRun is what one job needs to send a campaign to the devices it claims,
// looked up once for all its slices.
type sendRun struct {
	s               *Service
	c               *Campaign
	sender          *delivery.Sender
	unsubscribeList int64         // 0: every list, when a campaign names several
	limiter         *rate.Limiter // the campaign's throttle, if any
}

func (s *Service) newSendRun(ctx context.Context, c *Campaign) (*sendRun, error) {
	sender, err := s.senders.For(ctx, c.AppID)
	if err != nil {
		return nil, err
	}
	r := &sendRun{s: s, c: c, sender: sender}
	if len(c.Audience.Lists) == 1 {
		if l, err := subscribers.GetList(ctx, s.pool, c.Audience.Lists[0]); err == nil {
			r.unsubscribeList = l.ID
		}
	}
	if t := c.ThrottlePerMinute; t != nil {
		perSecond := float64(*t) / 60
		r.limiter = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
	}
	return r, nil
}

// send sends to claimed devices, one render per (variant, platform), and
// records every outcome in one statement.
func (r *sendRun) send(ctx context.Context, devices []claimed) error {
	if len(devices) == 0 {
		return nil
	}
	s, c := r.s, r.c
	groups := map[groupKey][]int{}
	for i, d := range devices {
		k := groupKey{c.Content.variantKey(d.locale), d.device.Platform}
		groups[k] = append(groups[k], i)
	}
	outcomes := make([]delivery.Outcome, len(devices))
	for k, idx := range groups {
		msg := c.Content.message(k.variant, k.platform, s.clickURL(c.ID, k.variant, k.platform))
		msg.Data["campaign"] = s.actionToken(c.ID)
		batchDevices := make([]delivery.Device, len(idx))
		for j, i := range idx {
			d := devices[i].device.ToDelivery()
			d.Vars = map[string]string{"unsubscribe_url": s.optin.UnsubscribeURL(devices[i].subscriberID, r.unsubscribeList),
				"reply_token": s.replyToken(c.ID, devices[i].subscriberID)}
			batchDevices[j] = d
		}
		for j, o := range r.sender.SendWith(ctx, msg, batchDevices, delivery.SendOptions{Limiter: r.limiter}) {
			outcomes[idx[j]] = o
		}
	}
	// Outcomes that are known get written even when the job's deadline
	// passed while sending: losing them would turn sent messages into
	// unknown ones.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return s.record(recordCtx, c.ID, devices, outcomes)
}

// recordTimeout bounds writing one slice's outcomes after its job's own
// deadline has passed.
const recordTimeout = 30 * time.Second

// record writes outcomes in one statement, deactivates gone devices in one
// more, and fails the campaign when the provider refused the credentials.
func (s *Service) record(ctx context.Context, campaignID int64, devices []claimed, outcomes []delivery.Outcome) error {
	n := len(devices)
	ids, statuses, classes, reasons, providerIDs := make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	var gone []subscribers.Gone
	configError := ""
	for i, o := range outcomes {
		if s.observe != nil {
			s.observe(o)
		}
		ids[i], classes[i], reasons[i], providerIDs[i] = devices[i].device.ID, string(o.Class), truncate(o.Reason, 500), o.ProviderID
		statuses[i] = "failed"
		switch o.Class {
		case delivery.ClassDelivered:
			statuses[i] = "delivered"
		case delivery.ClassDeviceGone:
			gone = append(gone, subscribers.Gone{DeviceID: devices[i].device.ID, UpdatedAt: devices[i].device.UpdatedAt, Reason: o.Reason})
		case delivery.ClassConfigError:
			configError = o.Reason
		}
	}
	if _, err := s.pool.Exec(ctx, `UPDATE deliveries d SET status = u.status, outcome = u.outcome, reason = nullif(u.reason, ''),
			provider_id = nullif(u.pid, ''), finished_at = now()
		FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(device_id, status, outcome, reason, pid)
		WHERE d.campaign_id = $1 AND d.device_id = u.device_id AND d.status = 'claimed'`,
		campaignID, ids, statuses, classes, reasons, providerIDs); err != nil {
		return fmt.Errorf("campaigns: record outcomes: %w", err)
	}
	if _, err := subscribers.DeactivateGone(ctx, s.pool, gone); err != nil {
		return err
	}
	if configError != "" {
		return s.fail(ctx, campaignID, "provider refused the app's credentials: "+configError)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
