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

// DispatchArgs turns new outbox events into webhook deliveries.
type DispatchArgs struct{}

// Kind is the job kind.
func (DispatchArgs) Kind() string { return "webhooks.dispatch" }

// InsertOpts keeps one dispatch waiting at a time.
func (DispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueWebhooks, UniqueOpts: river.UniqueOpts{ByPeriod: time.Second}}
}

// DispatchWorker runs DispatchArgs.
type DispatchWorker struct {
	river.WorkerDefaults[DispatchArgs]
	Service *Service
}

// dispatchPage is how many events one transaction dispatches.
const dispatchPage = 500

// Work dispatches every event after the cursor. Each page is one
// transaction that locks the cursor, writes the deliveries and their jobs
// and moves the cursor: an event is dispatched once however many
// processes run this job at the same time.
func (w *DispatchWorker) Work(ctx context.Context, _ *river.Job[DispatchArgs]) error {
	for {
		n, err := w.Service.dispatch(ctx)
		if err != nil || n < dispatchPage {
			return err
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
