package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
)

// dispatchPage is how many events one transaction dispatches.
const dispatchPage = 500

// Dispatch turns every outbox event after the dispatcher's cursor into
// deliveries. Each page is one transaction that locks the cursor, writes
// the deliveries with the River jobs that post them and moves the cursor:
// an event is dispatched once however many processes dispatch at the same
// time, and a process stopped mid-page leaves nothing half done.
func (s *Service) Dispatch(ctx context.Context) error {
	for {
		n, err := s.dispatch(ctx)
		if err != nil || n < dispatchPage {
			return err
		}
	}
}

// RunDispatcher dispatches every interval until ctx ends; worker processes
// run it. A page in progress when ctx ends is finished, not cut off.
func (s *Service) RunDispatcher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Dispatch(context.WithoutCancel(ctx)); err != nil {
			s.logger.Error("webhook dispatch failed; it is tried again", "error", err)
			s.results.WithLabelValues("dispatch_error").Inc()
		}
	}
}

type endpointRef struct {
	id     int64
	events []string
}

func (s *Service) dispatch(ctx context.Context) (int, error) {
	read := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cur audit.Position
		var txid int64
		if err := tx.QueryRow(ctx, `SELECT tx, event FROM webhook_cursor FOR UPDATE`).Scan(&txid, &cur.ID); err != nil {
			return fmt.Errorf("webhooks: read cursor: %w", err)
		}
		cur.Tx = uint64(txid)
		events, err := audit.EventsAfter(ctx, tx, cur, dispatchPage)
		if err != nil || len(events) == 0 {
			return err
		}
		read = len(events)
		rows, err := tx.Query(ctx, `SELECT id, events FROM webhook_endpoints WHERE enabled ORDER BY id`)
		if err != nil {
			return fmt.Errorf("webhooks: endpoints: %w", err)
		}
		endpoints, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (endpointRef, error) {
			var e endpointRef
			err := r.Scan(&e.id, &e.events)
			return e, err
		})
		if err != nil {
			return fmt.Errorf("webhooks: unable to fetch endpoint: %w", err)
		}
		var endpointIDs, eventIDs []int64
		var types []string
		var subscriberIDs []*int64
		var payloads [][]byte
		var ats []time.Time
		for _, e := range events {
			var payload map[string]any
			if err := json.Unmarshal(e.Payload, &payload); err != nil {
				return fmt.Errorf("webhooks: event %d payload: %w", e.ID, err)
			}
			typ := eventType(e.Topic, payload)
			if typ == "" {
				continue
			}
			var subID *int64
			if v, ok := payload["subscriber_id"].(float64); ok {
				id := int64(v)
				subID = &id
			}
			body, err := json.Marshal(map[string]any{"object": map[string]any{"type": e.ObjectType, "id": e.ObjectID},
				"data": json.RawMessage(e.Payload)})
			if err != nil {
				return fmt.Errorf("webhooks: event %d: %w", e.ID, err)
			}
			for _, ep := range endpoints {
				if len(ep.events) > 0 && !slices.Contains(ep.events, typ) {
					continue
				}
				endpointIDs, eventIDs, types = append(endpointIDs, ep.id), append(eventIDs, e.ID), append(types, typ)
				subscriberIDs, payloads, ats = append(subscriberIDs, subID), append(payloads, body), append(ats, e.At)
			}
		}
		last := events[len(events)-1].Position
		if _, err := tx.Exec(ctx, `UPDATE webhook_cursor SET tx = $1, event = $2`, int64(last.Tx), last.ID); err != nil {
			return fmt.Errorf("webhooks: move cursor: %w", err)
		}
		if len(endpointIDs) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `
			INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, subscriber_id, payload, event_at)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::jsonb[], $6::timestamptz[])
			RETURNING id`, endpointIDs, eventIDs, types, subscriberIDs, payloads, ats)
		if err != nil {
			return fmt.Errorf("webhooks: write deliveries: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("webhooks: write deliveries: %w", err)
		}
		jobs := make([]river.InsertManyParams, len(ids))
		for i, id := range ids {
			jobs[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: id}}
		}
		if _, err := s.river.InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("webhooks: queue deliveries: %w", err)
		}
		return nil
	})
	return read, err
}
