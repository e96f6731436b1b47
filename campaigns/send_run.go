package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// ClaimSlice is how many devices a batch claims at a time. A batch claims,
// sends and records one slice before it claims the next, so a process killed
// mid-send leaves at most one slice per running batch with an unknown
// outcome, however large the batches are.
const ClaimSlice = 500

// MaxResends is how often a device whose outcome is unknown is sent the
// campaign again (each time with the same collapse key).
const MaxResends = 2

// maxThrottledAttempts bounds the tries of a device its provider keeps
// throttling; the message's TTL bounds them too.
const maxThrottledAttempts = 8

// recordTimeout bounds writing one slice's outcomes after its job's own
// context has ended: outcomes that are known are written even then, because
// losing them would turn sent messages into unknown ones.
const recordTimeout = 30 * time.Second

// claimed is a device claimed for sending.
type claimed struct {
	device       subscribers.Device
	subscriberID int64
	locale       string
	// was is what the delivery row was before this claim: "" for a first
	// claim, "unknown" for a resend, "throttled" for a throttled retry,
	// "failed" for a retry-failed round.
	was      string
	attempts int
	// slice is the campaign_slices row of a first claim; 0 for a row that
	// was claimed again (a resend, a retry).
	slice int64
}

// claimedColumns are what sending needs of a device and its subscriber, in
// scanClaimed's order.
const claimedColumns = `d.id, d.subscriber_id, d.app_id, d.platform, d.token, coalesce(d.apns_topic, '') AS apns_topic,
	coalesce(d.apns_environment, '') AS apns_environment, coalesce(d.webpush_p256dh, '') AS p256dh,
	coalesce(d.webpush_auth, '') AS auth, d.updated_at, s.locale`

func scanClaimed(r pgx.CollectableRow) (claimed, error) { return scanClaimedWithSlice(r, false) }

// scanClaimedWithSlice scans claimedColumns, followed by the slice's id
// when withSlice is set (a first claim).
func scanClaimedWithSlice(r pgx.CollectableRow, withSlice bool) (claimed, error) {
	c := claimed{attempts: 1}
	d := &c.device
	dest := []any{&d.ID, &d.SubscriberID, &d.AppID, &d.Platform, &d.Token, &d.APNsTopic, &d.APNsEnvironment,
		&d.P256dh, &d.Auth, &d.UpdatedAt, &c.locale}
	if withSlice {
		dest = append(dest, &c.slice)
	}
	err := r.Scan(dest...)
	c.subscriberID = d.SubscriberID
	return c, err
}

// sendRun is what one job needs to send a campaign to the devices it claims,
// looked up once for all its slices.
type sendRun struct {
	s        *Service
	c        *Campaign
	q        *audienceQuery // the batch's audience (a retry round's: the campaign's)
	batch    int            // the deliveries' batch: a retry round's is -round
	sender   *delivery.Sender
	collapse string
	// expiry is when the message's TTL runs out; throttled devices are not
	// tried after it.
	expiry          time.Time
	unsubscribeList int64   // 0: every list, when a campaign names several
	perSecond       float64 // the campaign's throttle; 0 when none
	slice           int
	lastSlice       time.Duration
	// finishedIsRunning lets a retry round go on after its campaign finished.
	finishedIsRunning bool
	// token marks the claims this run holds (deliveries.claim_token): it
	// records and releases only those.
	token int64
	// acrossBatches makes first claims exclude every open slice of the
	// campaign, not only the batch's own. Batches of one wave hold disjoint
	// devices; batches of different waves (time zones) can meet a device
	// whose subscriber moved from one zone to another.
	acrossBatches bool
}

func (s *Service) newSendRun(ctx context.Context, c *Campaign, q *audienceQuery, batch int, sentAt time.Time) (*sendRun, error) {
	sender, err := s.senders.For(ctx, c.AppID)
	if err != nil {
		return nil, err
	}
	// Nearly always there already (one lookup by key): made when the
	// campaign was created and when it started.
	if err := ensurePartitions(ctx, s.pool, c.ID); err != nil {
		return nil, err
	}
	var tok [8]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("campaigns: run token: %w", err)
	}
	r := &sendRun{s: s, c: c, q: q, batch: batch, sender: sender, collapse: c.collapseKey(), slice: ClaimSlice,
		expiry: sentAt.Add(c.Content.ttl()), token: int64(binary.BigEndian.Uint64(tok[:]) >> 1)}
	if len(c.Audience.Lists) == 1 && len(q.lists) == 1 {
		r.unsubscribeList = q.lists[0]
	}
	if t := c.ThrottlePerMinute; t != nil {
		r.perSecond = float64(*t) / 60
		r.slice = max(1, min(ClaimSlice, int(r.perSecond*throttledSlice)))
	}
	return r, nil
}

// Reasons a run stops between slices; the job decides what each means.
var (
	stopPaused = errors.New("campaigns: campaign paused")
	stopEnded  = errors.New("campaigns: campaign cancelled, failed or finished")
)

// checkpoint runs between slices. It returns a stop reason (stopPaused,
// stopEnded, or a River snooze that gives the job back) or nil to go on.
func (r *sendRun) checkpoint(ctx context.Context) (stop error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.s.isDraining() {
		// The process is stopping: the rest of the job goes back to River
		// at once, for another process or this one after its restart.
		return river.JobSnooze(0), nil
	}
	// A job that could not finish another slice before River's timeout
	// yields and continues as a fresh run instead of being cut off mid-send.
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < 2*r.lastSlice+time.Second {
		return river.JobSnooze(0), nil
	}
	st, err := r.s.status(ctx, r.c.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case st == StatusRunning, st == StatusFinished && r.finishedIsRunning:
		return nil, nil
	case st == StatusPaused:
		return stopPaused, nil
	default:
		return stopEnded, nil
	}
}

// drive runs a job's two phases, checking between every slice whether to
// go on (see checkpoint): first, slices from first until it finds nothing
// more; then the open ends, the unknown outcomes to resend and the
// throttled devices whose time has come, waiting for that time when it is
// near. It reports whether both phases ran to the end; otherwise the job
// ends with its error (a snooze that gives it back to River, or a failure),
// or nil after park or end (the campaign was paused, or ended) ran.
func (r *sendRun) drive(ctx context.Context, first func(context.Context) (int, error), park, end func() error) (bool, error) {
	next := func() (stop bool, err error) {
		reason, err := r.checkpoint(ctx)
		switch {
		case err != nil:
			return true, err
		case reason == nil:
			return false, nil
		case errors.Is(reason, stopPaused):
			return true, park()
		case errors.Is(reason, stopEnded):
			return true, end()
		default:
			return true, reason
		}
	}
	for {
		if stop, err := next(); stop {
			return false, err
		}
		n, err := first(ctx)
		if err != nil {
			return false, err
		}
		if n == 0 {
			break
		}
	}
	for {
		if stop, err := next(); stop {
			return false, err
		}
		n, at, err := r.resendAndSend(ctx)
		if err != nil {
			return false, err
		}
		if n > 0 {
			continue
		}
		if at.IsZero() {
			return true, nil
		}
		// Throttled devices wait for the time their provider named.
		if err := r.waitUntil(ctx, at); err != nil {
			return false, err
		}
	}
}

// claimAndSend claims the next slice of the batch's devices that have no
// delivery row yet, sends to them and records the outcomes. It returns how
// many it claimed; 0 means every device of the batch has a row.
func (r *sendRun) claimAndSend(ctx context.Context) (int, error) {
	started := time.Now()
	if err := r.backlog(ctx); err != nil {
		return 0, err
	}
	devices, err := r.s.claim(ctx, r.c.ID, r.batch, r.token, r.q, r.slice, r.acrossBatches)
	if err != nil {
		return 0, err
	}
	if len(devices) == 0 {
		return 0, nil
	}
	if err := r.sendThrottled(ctx, devices); err != nil {
		return 0, err
	}
	r.lastSlice = time.Since(started)
	return len(devices), nil
}

// sendThrottled books the campaign's throttle for a claimed slice and sends
// it; when the booking cannot be kept within the job, the slice goes back
// unsent (first claims are released, reclaimed rows restored).
func (r *sendRun) sendThrottled(ctx context.Context, devices []claimed) error {
	limiter, err := r.reserve(ctx, len(devices))
	if err != nil {
		// Nothing was sent: the slice goes back unsent, then the job yields
		// (a snooze) or fails. A failed release is the error to report: a
		// snooze joined to it would hide it from River.
		if rerr := r.release(ctx, devices, "not sent: the throttle could not be booked within the job"); rerr != nil {
			return rerr
		}
		return err
	}
	return r.send(ctx, devices, limiter)
}

// release gives back claimed devices that were not sent to: first claims
// are deleted (the next run claims them again), reclaimed rows go back to
// what they were. It writes even after the job's context ended.
func (r *sendRun) release(ctx context.Context, devices []claimed, reason string) error {
	notSent := make([]delivery.Outcome, len(devices))
	for i, d := range devices {
		notSent[i] = delivery.Outcome{DeviceID: d.device.ID, Platform: d.device.Platform, Class: delivery.ClassNotSent, Reason: reason}
	}
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return r.s.record(recordCtx, r.c.ID, r.token, devices, notSent, r.expiry, false)
}

// claim claims up to n audience devices of the batch that have no delivery
// row and are in no open slice of the batch, as one campaign_slices row,
// and returns exactly those devices (each carrying the slice's id). The
// slice is committed before anything is sent. Claims of one batch are taken
// one after the other (an advisory lock for the transaction), so that two
// runs of the batch (a rescue while the first still runs) never claim one
// device twice: each sees the other's committed slice.
func (s *Service) claim(ctx context.Context, campaignID int64, batch int, token int64, q *audienceQuery, n int,
	acrossBatches bool) ([]claimed, error) {
	k := len(q.args)
	var devices []claimed
	// Across batches, the lock and the exclusion are the campaign's (batch
	// -1 names no batch): see sendRun.acrossBatches.
	lockBatch := batch
	if acrossBatches {
		lockBatch = -1
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('herald.claim:' || $1::bigint || ':' || $2::int, 0))`,
			campaignID, lockBatch); err != nil {
			return fmt.Errorf("campaigns: claim: lock batch: %w", err)
		}
		// One statement: what is claimed is exactly what is returned for
		// sending. OFFSET 0 keeps the check for an existing delivery row a
		// probe of the primary key per candidate (a batch has at most
		// BatchSize): as a join, a planner that has not seen the campaign's
		// partition grow since its last ANALYZE hashes every row the
		// campaign has written so far, seconds per slice at a million.
		rows, err := tx.Query(ctx, fmt.Sprintf(`
			WITH aud AS (
				SELECT %s %s
				  AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.campaign_id = $%d AND x.device_id = d.id OFFSET 0)
				  AND NOT EXISTS (SELECT 1 FROM campaign_slices sl
				                  WHERE sl.campaign_id = $%d AND (sl.batch = $%d OR $%d) AND d.id = ANY (sl.device_ids))
				ORDER BY d.id LIMIT %d
			),
			slice AS (
				INSERT INTO campaign_slices (campaign_id, batch, platform, token, device_ids, subscriber_ids)
				SELECT $%d, $%d, min(platform), $%d, array_agg(id ORDER BY id), array_agg(subscriber_id ORDER BY id)
				FROM aud HAVING count(*) > 0
				RETURNING id
			)
			SELECT aud.*, slice.id FROM aud CROSS JOIN slice`, claimedColumns, q.from, k+1, k+1, k+2, k+4, n, k+1, k+2, k+3),
			q.params(campaignID, batch, token, acrossBatches)...)
		if err != nil {
			return fmt.Errorf("campaigns: claim: %w", err)
		}
		devices, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) { return scanClaimedWithSlice(r, true) })
		if err != nil {
			return fmt.Errorf("campaigns: claim: %w", err)
		}
		return nil
	})
	return devices, err
}

// resendAndSend claims, sends and records the next slice of the run's open
// ends: devices whose outcome is unknown (when the campaign resends them)
// and throttled devices whose retry time has come. With nothing to do now
// it returns the earliest retry time still ahead, or the zero time when the
// run has no open ends left.
func (r *sendRun) resendAndSend(ctx context.Context) (int, time.Time, error) {
	return r.reclaimAndSend(ctx, `batch = $2 AND (($3 AND status = 'unknown' AND outcome = 'unknown' AND resends < $4)
		OR (status = 'failed' AND outcome = 'throttled' AND retry_at <= now()))`, r.c.ResendUnknown, MaxResends)
}

// reclaimAndSend claims rows that already exist (picked by where, with $1
// the campaign, $2 the run's batch, $3 and $4 the resend switch and the
// most resends a row may already have), moves them to the run's batch,
// sends and records.
func (r *sendRun) reclaimAndSend(ctx context.Context, where string, resend bool, resendLimit int) (int, time.Time, error) {
	s := r.s
	started := time.Now()
	if err := r.backlog(ctx); err != nil {
		return 0, time.Time{}, err
	}
	rows, err := s.pool.Query(ctx, `
		WITH picked AS (
			SELECT device_id, CASE WHEN status = 'unknown' THEN 'unknown' WHEN outcome = 'throttled' AND batch = $2
				THEN 'throttled' ELSE 'failed' END AS was
			FROM deliveries WHERE campaign_id = $1 AND `+where+`
			ORDER BY device_id LIMIT $5 FOR UPDATE SKIP LOCKED
		)
		UPDATE deliveries d SET status = 'claimed', batch = $2, claimed_at = now(), attempts = d.attempts + 1,
			outcome = NULL, reason = NULL, provider_id = NULL, retry_at = NULL, finished_at = NULL, claim_token = $6,
			resends = d.resends + CASE WHEN picked.was = 'unknown' THEN 1 ELSE 0 END
		FROM picked WHERE d.campaign_id = $1 AND d.device_id = picked.device_id
		RETURNING d.device_id, picked.was, d.attempts`,
		r.c.ID, r.batch, resend, resendLimit, r.slice, r.token)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("campaigns: reclaim: %w", err)
	}
	type pick struct {
		id       int64
		was      string
		attempts int
	}
	picks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pick, error) {
		var p pick
		return p, row.Scan(&p.id, &p.was, &p.attempts)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("campaigns: reclaim: %w", err)
	}
	if len(picks) == 0 {
		var next *time.Time
		if err := s.pool.QueryRow(ctx, `SELECT min(retry_at) FROM deliveries
			WHERE campaign_id = $1 AND batch = $2 AND status = 'failed' AND outcome = 'throttled' AND retry_at IS NOT NULL`,
			r.c.ID, r.batch).Scan(&next); err != nil {
			return 0, time.Time{}, fmt.Errorf("campaigns: next throttled retry: %w", err)
		}
		if next == nil {
			return 0, time.Time{}, nil
		}
		return 0, *next, nil
	}
	ids := make([]int64, len(picks))
	byID := make(map[int64]pick, len(picks))
	for i, p := range picks {
		ids[i], byID[p.id] = p.id, p
	}
	// Only devices still in the audience (still confirmed, still active).
	devices, err := s.devicesIn(ctx, r.q.and("d.id = ANY(%s::bigint[])", ids))
	if err != nil {
		// Nothing was sent: the rows go back to what they were.
		held := make([]claimed, len(picks))
		for i, p := range picks {
			held[i] = claimed{device: subscribers.Device{ID: p.id}, was: p.was, attempts: p.attempts}
		}
		return 0, time.Time{}, errors.Join(err, r.release(ctx, held, "not sent: the devices could not be read"))
	}
	inAudience := make(map[int64]bool, len(devices))
	for i := range devices {
		p := byID[devices[i].device.ID]
		devices[i].was, devices[i].attempts = p.was, p.attempts
		inAudience[p.id] = true
	}
	var leftIDs []int64
	var leftWas []string
	for _, p := range picks {
		if !inAudience[p.id] {
			leftIDs, leftWas = append(leftIDs, p.id), append(leftWas, p.was)
		}
	}
	if len(leftIDs) > 0 {
		// An unknown one may have arrived the first time: it stays unknown,
		// with an outcome that says why it is not sent again.
		if _, err := s.pool.Exec(ctx, `UPDATE deliveries d SET finished_at = now(),
				status = CASE WHEN u.was = 'unknown' THEN 'unknown' ELSE 'failed' END, outcome = 'left_audience',
				reason = 'left the audience before it was sent again',
				resends = d.resends - CASE WHEN u.was = 'unknown' THEN 1 ELSE 0 END
			FROM unnest($2::bigint[], $4::text[]) AS u(device_id, was)
			WHERE d.campaign_id = $1 AND d.device_id = u.device_id AND d.status = 'claimed' AND d.claim_token = $3`,
			r.c.ID, leftIDs, r.token, leftWas); err != nil {
			return 0, time.Time{}, errors.Join(fmt.Errorf("campaigns: devices that left the audience: %w", err),
				r.release(ctx, devices, "not sent: the run could not go on"))
		}
	}
	if len(devices) > 0 {
		if err := r.sendThrottled(ctx, devices); err != nil {
			return 0, time.Time{}, err
		}
	}
	r.lastSlice = time.Since(started)
	return len(picks), time.Time{}, nil
}

func (s *Service) devicesIn(ctx context.Context, q *audienceQuery) ([]claimed, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+claimedColumns+` `+q.from, q.params()...)
	if err != nil {
		return nil, fmt.Errorf("campaigns: load devices: %w", err)
	}
	devices, err := pgx.CollectRows(rows, scanClaimed)
	if err != nil {
		return nil, fmt.Errorf("campaigns: load devices: %w", err)
	}
	return devices, nil
}

// waitUntil waits for a throttled device's retry time within the job, or
// gives the job back to River until then when it is further away than a
// short wait or the job's deadline.
func (r *sendRun) waitUntil(ctx context.Context, t time.Time) error {
	wait := time.Until(t)
	deadline, hasDeadline := ctx.Deadline()
	if wait > 2*time.Second || hasDeadline && time.Now().Add(wait+time.Second).After(deadline) {
		return river.JobSnooze(max(wait, 0))
	}
	return r.s.sleep(ctx, wait)
}

// sleep waits d, or less when the context ends or the process drains.
func (s *Service) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.draining:
		return nil // the next checkpoint hands the job back
	case <-t.C:
		return nil
	}
}

type groupKey struct {
	variant  string
	platform delivery.Platform
}

// send sends to claimed devices, one render per (variant, platform), and
// records every outcome. It returns the context's error when the job's
// context ended while sending, after recording what is known.
func (r *sendRun) send(ctx context.Context, devices []claimed, limiter *rate.Limiter) error {
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
		msg.Data["receipt"] = "{{receipt}}"
		msg.CollapseKey = r.collapse
		batchDevices := make([]delivery.Device, len(idx))
		for j, i := range idx {
			d := devices[i].device.ToDelivery()
			d.Vars = map[string]string{"unsubscribe_url": s.optin.UnsubscribeURL(devices[i].subscriberID, r.unsubscribeList),
				"reply_token": s.replyToken(c.ID, devices[i].subscriberID),
				"receipt":     s.receiptToken(c.ID, devices[i].device.ID)}
			batchDevices[j] = d
		}
		for j, o := range r.sender.SendWith(ctx, msg, batchDevices, delivery.SendOptions{Limiter: limiter}) {
			outcomes[idx[j]] = o
		}
	}
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := s.record(recordCtx, c.ID, r.token, devices, outcomes, r.expiry, true); err != nil {
		return err
	}
	return ctx.Err()
}

// recordSlice writes the outcomes of a first claim as delivery rows in the
// statement that deletes its slice: if another run took the slice first
// (it found it open at its start and wrote its devices as unknown), nothing
// is written. Devices not sent (released of them) are left out; the batch
// claims them again. It returns how many claims were lost to another run.
func (s *Service) recordSlice(ctx context.Context, campaignID, token, slice int64, released int, ids, subs []int64,
	platforms, statuses, classes, reasons, providerIDs []string, retryAt []*time.Time) (lost int64, err error) {
	if len(ids) == 0 {
		tag, err := s.pool.Exec(ctx, `DELETE FROM campaign_slices WHERE id = $1 AND token = $2`, slice, token)
		if err != nil {
			return 0, fmt.Errorf("campaigns: release a slice that was never sent: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return int64(released), nil
		}
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `
		WITH sl AS (
			DELETE FROM campaign_slices WHERE id = $2 AND token = $3 RETURNING batch, claimed_at
		)
		INSERT INTO deliveries (campaign_id, device_id, subscriber_id, batch, platform, status, outcome, reason, provider_id,
			retry_at, claimed_at, finished_at, claim_token)
		SELECT $1, u.device_id, u.subscriber_id, sl.batch, u.platform, u.status, u.outcome, nullif(u.reason, ''),
			nullif(u.pid, ''), u.retry_at, sl.claimed_at, now(), $3
		FROM sl CROSS JOIN unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
			$11::timestamptz[]) AS u(device_id, subscriber_id, platform, status, outcome, reason, pid, retry_at)
		-- A row that exists already was written by another claim of the
		-- device (it counts as not recorded here).
		ON CONFLICT (campaign_id, device_id) DO NOTHING`,
		campaignID, slice, token, ids, subs, platforms, statuses, classes, reasons, providerIDs, retryAt)
	if err != nil {
		return 0, fmt.Errorf("campaigns: record outcomes: %w", err)
	}
	return int64(len(ids)) - tag.RowsAffected(), nil
}

// record writes a slice's outcomes in one statement (two when some requests
// never left), deactivates gone devices in one more, and fails the campaign
// when the provider refused the credentials.
//
// What each outcome becomes: delivered; failed with the class as its
// outcome; unknown (may have arrived; resent with the same collapse key
// when the campaign says so); throttled with a retry time inside the
// message's TTL; and not_sent: a first claim is released (its row deleted,
// so the batch claims it again), a reclaimed row goes back to what it was.
func (s *Service) record(ctx context.Context, campaignID, token int64, devices []claimed, outcomes []delivery.Outcome,
	expiry time.Time, sent bool) error {
	n := len(devices)
	ids, statuses, classes, reasons, providerIDs := make([]int64, 0, n), make([]string, 0, n), make([]string, 0, n),
		make([]string, 0, n), make([]string, 0, n)
	retryAt, resends := make([]*time.Time, 0, n), make([]int32, 0, n)
	var release []int64
	var gone []subscribers.Gone
	subs, platforms := make([]int64, 0, n), make([]string, 0, n)
	// A first claim's devices all come from one slice (see claim).
	var slice int64
	if n > 0 {
		slice = devices[0].slice
	}
	configError := ""
	now := s.now()
	for i, o := range outcomes {
		if s.observe != nil && sent {
			s.observe(o)
		}
		d := devices[i]
		status, class, reason := "failed", string(o.Class), invalid.Truncate(o.Reason, 500)
		var at *time.Time
		var resend int32
		switch o.Class {
		case delivery.ClassDelivered:
			status = "delivered"
		case delivery.ClassUnknown:
			status = "unknown"
		case delivery.ClassDeviceGone:
			gone = append(gone, subscribers.Gone{DeviceID: d.device.ID, UpdatedAt: d.device.UpdatedAt, Reason: o.Reason})
		case delivery.ClassConfigError:
			configError = o.Reason
		case delivery.ClassThrottled:
			t := now.Add(max(o.RetryAfter, time.Second))
			switch {
			case d.attempts >= maxThrottledAttempts:
				reason = invalid.Truncate(fmt.Sprintf("%s (gave up after %d attempts)", o.Reason, d.attempts), 500)
			case t.After(expiry):
				reason = invalid.Truncate(o.Reason+" (the message's TTL ends before the provider's retry time)", 500)
			default:
				at = &t
			}
		case delivery.ClassNotSent:
			switch d.was {
			case "":
				release = append(release, d.device.ID)
				continue
			case "unknown":
				status, class, resend = "unknown", string(delivery.ClassUnknown), -1
				reason = "not sent again: the run stopped first"
			case "throttled":
				class, at = string(delivery.ClassThrottled), &now
			default:
				class, reason = string(delivery.ClassRetryable), "not sent again: the run stopped first"
			}
		}
		ids, statuses, classes, reasons = append(ids, d.device.ID), append(statuses, status), append(classes, class), append(reasons, reason)
		providerIDs, retryAt, resends = append(providerIDs, o.ProviderID), append(retryAt, at), append(resends, resend)
		subs, platforms = append(subs, d.subscriberID), append(platforms, string(d.device.Platform))
	}
	// lost counts claims another run took before this one recorded them.
	var lost int64
	write := func(db database.DB) error {
		tag, err := db.Exec(ctx, `UPDATE deliveries d SET status = u.status, outcome = u.outcome, reason = nullif(u.reason, ''),
				provider_id = nullif(u.pid, ''), retry_at = u.retry_at, resends = d.resends + u.resends, finished_at = now()
			FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::int[])
				AS u(device_id, status, outcome, reason, pid, retry_at, resends)
			WHERE d.campaign_id = $1 AND d.device_id = u.device_id AND d.status = 'claimed' AND d.claim_token = $9`,
			campaignID, ids, statuses, classes, reasons, providerIDs, retryAt, resends, token)
		if err != nil {
			return fmt.Errorf("campaigns: record outcomes: %w", err)
		}
		lost = int64(len(ids)) - tag.RowsAffected()
		if len(release) == 0 {
			return nil
		}
		tag, err = db.Exec(ctx, `DELETE FROM deliveries WHERE campaign_id = $1 AND device_id = ANY($2) AND status = 'claimed'
			AND claim_token = $3`, campaignID, release, token)
		if err != nil {
			return fmt.Errorf("campaigns: release claims that were never sent: %w", err)
		}
		lost += int64(len(release)) - tag.RowsAffected()
		return nil
	}
	var err error
	switch {
	case slice != 0:
		lost, err = s.recordSlice(ctx, campaignID, token, slice, len(release), ids, subs, platforms, statuses, classes,
			reasons, providerIDs, retryAt)
	case len(release) == 0:
		err = write(s.pool)
	default:
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return write(tx) })
	}
	if err != nil {
		return err
	}
	if lost > 0 {
		// Another run of the batch took these claims (it found them unknown
		// at its start and resends them under the collapse key): what this
		// run learnt of them is not written over that.
		s.logger.Warn("outcomes not recorded: another run of the batch holds the claims", "campaign_id", campaignID,
			"count", lost)
	}
	if _, err := subscribers.DeactivateGone(ctx, s.pool, gone); err != nil {
		return err
	}
	if configError != "" {
		return s.fail(ctx, campaignID, "provider refused the app's credentials: "+configError)
	}
	return nil
}
