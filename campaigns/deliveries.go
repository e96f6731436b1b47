package campaigns

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// Delivery is one device's record in a campaign.
type Delivery struct {
	DeviceID     int64   `json:"device_id"`
	SubscriberID int64   `json:"subscriber_id"`
	Platform     string  `json:"platform"`
	Status       string  `json:"status"`
	Outcome      *string `json:"outcome"`
	Reason       *string `json:"reason"`
	ProviderID   *string `json:"provider_id"`
	// Attempts counts sends to this device within the campaign; Resends
	// those after an unknown outcome.
	Attempts   int        `json:"attempts"`
	Resends    int        `json:"resends"`
	RetryAt    *time.Time `json:"retry_at"`
	Batch      int        `json:"batch"`
	ClaimedAt  time.Time  `json:"claimed_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// DeliveryFilter picks a campaign's deliveries; empty fields match all.
type DeliveryFilter struct {
	// Status is claimed, delivered, failed or unknown.
	Status string
	// Reason is the outcome class: retryable, throttled, device_gone,
	// rejected, config_error, left_audience, unknown.
	Reason string
	Page   subscribers.Page
}

var (
	deliveryStatuses = map[string]bool{"claimed": true, "delivered": true, "failed": true, "unknown": true}
	deliveryReasons  = map[string]bool{
		string(delivery.ClassRetryable): true, string(delivery.ClassThrottled): true, string(delivery.ClassDeviceGone): true,
		string(delivery.ClassRejected): true, string(delivery.ClassConfigError): true, string(delivery.ClassUnknown): true,
		string(delivery.ClassDelivered): true, "left_audience": true,
	}
)

// Deliveries pages through a campaign's deliveries by device id (keyset:
// Page.After is the last device id of the previous page), filtered by
// status and reason, so that operators can see which devices failed or are
// unknown, and why.
func (s *Service) Deliveries(ctx context.Context, id int64, f DeliveryFilter) ([]Delivery, error) {
	if f.Status != "" && !deliveryStatuses[f.Status] {
		return nil, invalid.Field("status", "must be claimed, delivered, failed or unknown")
	}
	if f.Reason != "" && !deliveryReasons[f.Reason] {
		return nil, invalid.Field("reason", "is not an outcome (retryable, throttled, device_gone, rejected, config_error, left_audience, unknown)")
	}
	limit := f.Page.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if _, err := s.status(ctx, id); err != nil {
		return nil, err
	}
	// The status is written as a literal (from the set above), so that
	// PostgreSQL can use the partial index over failed and unknown rows.
	where, args := "", []any{id, f.Page.After, limit}
	if f.Status != "" {
		where += fmt.Sprintf(" AND status = '%s'", f.Status)
	}
	if f.Reason != "" {
		args = append(args, f.Reason)
		where += " AND outcome = $4"
	}
	rows, err := s.pool.Query(ctx, `
		SELECT device_id, subscriber_id, platform, status, outcome, reason, provider_id, attempts, resends, retry_at,
			batch, claimed_at, finished_at
		FROM deliveries
		WHERE campaign_id = $1 AND device_id > $2`+where+`
		ORDER BY device_id LIMIT $3`, args...)
	if err != nil {
		return nil, fmt.Errorf("campaigns: deliveries of %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Delivery])
	if err != nil {
		return nil, fmt.Errorf("campaigns: deliveries of %d: %w", id, err)
	}
	return out, nil
}
