package campaigns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// TestSendsPerMinute is how many test sends one campaign takes a minute.
const TestSendsPerMinute = 10

// ErrTestSendLimit is returned when a campaign had TestSendsPerMinute test
// sends in the last minute.
var ErrTestSendLimit = errors.New("campaigns: too many test sends of this campaign; wait a minute")

// TestSendResult is one device's outcome of a test send.
type TestSendResult struct {
	SubscriberID int64           `json:"subscriber_id"`
	DeviceID     int64           `json:"device_id"`
	Outcome      TestSendOutcome `json:"outcome"`
}

// TestSendOutcome is the provider's answer to one test send.
type TestSendOutcome struct {
	// Class is the outcome class, as deliveries name it (delivered,
	// device_gone, rejected, ...).
	Class delivery.Class `json:"class"`
	// Reason is the provider's reason or the error, when not delivered.
	Reason string `json:"reason,omitempty"`
	// ProviderID is the provider's message id when delivered.
	ProviderID string `json:"provider_id,omitempty"`
	// StatusCode is the provider's HTTP status, when it answered.
	StatusCode int `json:"status_code,omitempty"`
}

// TestSendSkip is a named subscriber a test send did not reach, and why.
type TestSendSkip struct {
	SubscriberID int64  `json:"subscriber_id"`
	Reason       string `json:"reason"`
}

// TestSendReport is what a test send did.
type TestSendReport struct {
	Results []TestSendResult `json:"results"`
	Skipped []TestSendSkip   `json:"skipped"`
}

// TestSend sends a draft or scheduled campaign now, marked "[Test] ", to
// named subscribers who may receive marketing: active, with a confirmed
// membership in one of the campaign's lists, on their active devices of the
// campaign's app. Devices an admin marked as test devices (a staff member's
// own phone) receive it without list consent. Every device gets it once per
// call, a campaign takes TestSendsPerMinute test sends a minute, and each is
// recorded (campaign_test_sends: who, whom, which devices, who was skipped
// and why) before anything is sent. Nothing counts as a delivery of the
// campaign.
func (s *Service) TestSend(ctx context.Context, actor audit.Actor, id int64, subscriberIDs []int64) (*TestSendReport, error) {
	if len(subscriberIDs) == 0 || len(subscriberIDs) > 20 {
		return nil, invalid.Field("subscriber_ids", "name 1 to 20 subscribers")
	}
	ids := slices.Clone(subscriberIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var c *Campaign
	var devices []claimed
	var trail int64
	report := &TestSendReport{Results: []TestSendResult{}, Skipped: []TestSendSkip{}}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		// The lock makes the per-minute count exact across processes.
		if c, err = getCampaign(ctx, tx, id, "FOR UPDATE OF c"); err != nil {
			return err
		}
		if c.Status != StatusDraft && c.Status != StatusScheduled {
			return fmt.Errorf("%w: test sends are for draft and scheduled campaigns", ErrTransition)
		}
		var recent int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM campaign_test_sends WHERE campaign_id = $1 AND created_at > now() - interval '1 minute'`,
			id).Scan(&recent); err != nil {
			return fmt.Errorf("campaigns: count test sends: %w", err)
		}
		if recent >= TestSendsPerMinute {
			return ErrTestSendLimit
		}
		q, err := s.audience(ctx, tx, c.AppID, &Audience{Lists: c.Audience.Lists})
		if err != nil {
			return err
		}
		if report.Skipped, err = testSendSkips(ctx, tx, c.AppID, q.lists, ids); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+claimedColumns+`
			FROM devices d JOIN subscribers s ON s.id = d.subscriber_id
			WHERE d.subscriber_id = ANY($1) AND d.app_id = $2 AND d.active AND s.state = 'active'
			AND (d.test_device OR EXISTS (SELECT 1 FROM memberships m
				WHERE m.subscriber_id = s.id AND m.list_id = ANY($3) AND m.status = 'confirmed'))
			ORDER BY d.id`, ids, c.AppID, q.lists)
		if err != nil {
			return fmt.Errorf("campaigns: test send devices: %w", err)
		}
		if devices, err = pgx.CollectRows(rows, scanClaimed); err != nil {
			return fmt.Errorf("campaigns: test send devices: %w", err)
		}
		skipped, err := json.Marshal(report.Skipped)
		if err != nil {
			return fmt.Errorf("campaigns: record test send: %w", err)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO campaign_test_sends (campaign_id, actor, subscriber_ids, device_ids, skipped)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, id, actor.String(), ids, deviceIDs(devices), skipped).Scan(&trail); err != nil {
			return fmt.Errorf("campaigns: record test send: %w", err)
		}
		return recordChange(ctx, tx, actor, "campaign.test_send", id, map[string]any{"test_send_id": trail,
			"subscribers": len(ids), "devices": len(devices)})
	})
	if err != nil {
		return nil, err
	}
	s.logger.Info("campaign test send", "campaign_id", id, "actor", actor.String(), "devices", len(devices), "skipped", len(report.Skipped))
	if len(devices) == 0 {
		return report, s.recordTestOutcomes(ctx, trail, report.Results)
	}
	if err := s.sendTest(ctx, c, devices, report); err != nil {
		return nil, errors.Join(err, s.recordTestOutcomes(ctx, trail, report.Results))
	}
	return report, s.recordTestOutcomes(ctx, trail, report.Results)
}

// sendTest sends a test message to each device, once.
func (s *Service) sendTest(ctx context.Context, c *Campaign, devices []claimed, report *TestSendReport) error {
	sender, err := s.senders.For(ctx, c.AppID)
	if err != nil {
		return err
	}
	var unsubscribeList int64
	if len(c.Audience.Lists) == 1 {
		if l, err := subscribers.GetList(ctx, s.pool, c.Audience.Lists[0]); err == nil {
			unsubscribeList = l.ID
		} else if !errors.Is(err, subscribers.ErrNotFound) {
			return fmt.Errorf("campaigns: test send list: %w", err)
		}
	}
	for _, d := range devices {
		variant := c.Content.variantKey(d.locale)
		msg := c.Content.message(variant, d.device.Platform, s.clickURL(c.ID, variant, d.device.Platform))
		msg.Title = "[Test] " + msg.Title
		msg.Data["campaign"] = s.actionToken(c.ID)
		dd := d.device.ToDelivery()
		dd.Vars = map[string]string{"unsubscribe_url": s.optin.UnsubscribeURL(d.subscriberID, unsubscribeList),
			"reply_token": s.replyToken(c.ID, d.subscriberID)}
		o := sender.Send(ctx, msg, []delivery.Device{dd})[0]
		report.Results = append(report.Results, TestSendResult{SubscriberID: d.subscriberID, DeviceID: d.device.ID,
			Outcome: TestSendOutcome{Class: o.Class, Reason: o.Reason, ProviderID: o.ProviderID, StatusCode: o.StatusCode}})
	}
	return nil
}

// recordTestOutcomes completes a test send's record with what each
// provider said, also after the request's context ended.
func (s *Service) recordTestOutcomes(ctx context.Context, trail int64, results []TestSendResult) error {
	type outcome struct {
		DeviceID int64  `json:"device_id"`
		Class    string `json:"class"`
		Reason   string `json:"reason,omitempty"`
	}
	out := make([]outcome, len(results))
	for i, r := range results {
		out[i] = outcome{DeviceID: r.DeviceID, Class: string(r.Outcome.Class), Reason: invalid.Truncate(r.Outcome.Reason, 200)}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("campaigns: record test send outcomes: %w", err)
	}
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := s.pool.Exec(recordCtx, `UPDATE campaign_test_sends SET outcomes = $2 WHERE id = $1`, trail, b); err != nil {
		return fmt.Errorf("campaigns: record test send outcomes: %w", err)
	}
	return nil
}

// testSendSkips says, for each named subscriber who gets nothing, why.
func testSendSkips(ctx context.Context, tx pgx.Tx, appID int64, lists, ids []int64) ([]TestSendSkip, error) {
	rows, err := tx.Query(ctx, `
		SELECT i.id, CASE
			WHEN s.id IS NULL THEN 'no such subscriber'
			WHEN s.state <> 'active' THEN 'the subscriber is ' || s.state
			WHEN NOT EXISTS (SELECT 1 FROM devices d WHERE d.subscriber_id = s.id AND d.app_id = $2 AND d.active)
				THEN 'no active device of the campaign''s app'
			WHEN NOT EXISTS (SELECT 1 FROM devices d WHERE d.subscriber_id = s.id AND d.app_id = $2 AND d.active AND d.test_device)
				AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.subscriber_id = s.id AND m.list_id = ANY($3) AND m.status = 'confirmed')
				THEN 'no confirmed membership of the campaign''s lists, and no test device'
			END
		FROM unnest($1::bigint[]) AS i(id) LEFT JOIN subscribers s ON s.id = i.id
		ORDER BY i.id`, ids, appID, lists)
	if err != nil {
		return nil, fmt.Errorf("campaigns: test send recipients: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TestSendSkip, error) {
		var sk TestSendSkip
		var reason *string
		err := r.Scan(&sk.SubscriberID, &reason)
		if reason != nil {
			sk.Reason = *reason
		}
		return sk, err
	})
	if err != nil {
		return nil, fmt.Errorf("campaigns: test send recipients: %w", err)
	}
	skipped := []TestSendSkip{}
	for _, sk := range all {
		if sk.Reason != "" {
			skipped = append(skipped, sk)
		}
	}
	return skipped, nil
}

func deviceIDs(devices []claimed) []int64 {
	out := make([]int64, len(devices))
	for i, d := range devices {
		out[i] = d.device.ID
	}
	return out
}
