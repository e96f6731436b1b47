package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
)

// Delivery is one event sent to one endpoint, with its last attempt.
type Delivery struct {
	ID              int64      `json:"id"`
	EndpointID      int64      `json:"endpoint_id"`
	EventID         int64      `json:"event_id"`
	EventType       string     `json:"event_type"`
	Status          string     `json:"status"`
	Attempts        int        `json:"attempts"`
	ResponseStatus  *int       `json:"response_status"`
	LatencyMS       *int       `json:"latency_ms"`
	ResponseExcerpt string     `json:"response_excerpt"`
	Error           string     `json:"error"`
	CreatedAt       time.Time  `json:"created_at"`
	LastAttemptAt   *time.Time `json:"last_attempt_at"`
}

const deliveryColumns = `id, endpoint_id, event_id, event_type, status, attempts, response_status, latency_ms,
	response_excerpt, error, created_at, last_attempt_at`

// Deliveries returns an endpoint's log, newest first, before delivery id
// before (0: the newest).
func (s *Service) Deliveries(ctx context.Context, endpointID, before int64, limit int) ([]Delivery, error) {
	if _, err := s.Get(ctx, endpointID); err != nil {
		return nil, err
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE endpoint_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, endpointID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Delivery])
	if err != nil {
		return nil, fmt.Errorf("webhooks: unable to fetch delivery: %w", err)
	}
	return out, nil
}

// Redeliver sends a delivery's event to its endpoint again, as a new
// delivery with its own id and log.
func (s *Service) Redeliver(ctx context.Context, actor audit.Actor, endpointID, deliveryID int64) (*Delivery, error) {
	var d Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, subscriber_id, payload, event_at)
			SELECT endpoint_id, event_id, event_type, subscriber_id, payload, event_at FROM webhook_deliveries
			WHERE id = $1 AND endpoint_id = $2
			RETURNING `+deliveryColumns, deliveryID, endpointID).Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.Status,
			&d.Attempts, &d.ResponseStatus, &d.LatencyMS, &d.ResponseExcerpt, &d.Error, &d.CreatedAt, &d.LastAttemptAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("webhooks: redeliver: %w", err)
		}
		if _, err := s.river.InsertTx(ctx, tx, DeliverArgs{DeliveryID: d.ID}, nil); err != nil {
			return fmt.Errorf("webhooks: queue redelivery: %w", err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "webhook.redeliver", ObjectType: "webhook",
			ObjectID: strconv.FormatInt(endpointID, 10), Summary: map[string]any{"delivery_id": deliveryID, "new_delivery_id": d.ID}})
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}
