package conversations

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// errPushesLeft is returned by DeliverWorker when some devices are to be
// tried again: River retries the job with backoff.
var errPushesLeft = errors.New("conversations: pushes left to retry")

// DeliverWorker pushes a message to the devices queued for it. Each
// device's row is claimed (status sending) and committed before the push:
// a crash or a stop leaves "unknown" for the next attempt to find, never a
// second push. Only outcomes that never reached the provider are tried
// again.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	Service *Service
}

// Timeout bounds one attempt.
func (w *DeliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return time.Minute }

// Work pushes the message.
func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	s := w.Service
	id := job.Args.MessageID
	var m *Message
	var conv *Conversation
	var claimed []int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A device left "sending" by an attempt that died may have got the
		// push already.
		if _, err := tx.Exec(ctx, `UPDATE message_deliveries SET status = 'unknown', outcome = 'unknown',
			reason = 'the attempt that was sending it ended without recording', finished_at = now()
			WHERE message_id = $1 AND status = 'sending'`, id); err != nil {
			return fmt.Errorf("conversations: settle earlier attempt: %w", err)
		}
		rows, err := tx.Query(ctx, `UPDATE message_deliveries SET status = 'sending'
			WHERE message_id = $1 AND status = 'pending' RETURNING device_id`, id)
		if err != nil {
			return fmt.Errorf("conversations: claim deliveries: %w", err)
		}
		if claimed, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return fmt.Errorf("conversations: claim deliveries: %w", err)
		}
		if m, err = getMessage(ctx, tx, id); err != nil {
			return err
		}
		conv, err = getConversation(ctx, tx, m.ConversationID, "")
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return river.JobCancel(fmt.Errorf("message %d is gone (erased)", id))
	}
	if err != nil || len(claimed) == 0 {
		return err
	}
	if m.ExpiresAt != nil && !m.ExpiresAt.After(s.now()) {
		return s.settle(ctx, m, conv, nil, claimed, "expired before it could be sent", true)
	}
	devices, err := subscribers.DevicesByID(ctx, s.pool, claimed)
	if err != nil {
		return errors.Join(err, s.unclaim(ctx, id, claimed))
	}
	sender, err := s.senders.For(ctx, *conv.AppID)
	if err != nil {
		return errors.Join(err, s.unclaim(ctx, id, claimed))
	}
	msg := s.pushMessage(m, conv, job.Args.Title)
	targets := make([]delivery.Device, 0, len(devices))
	for _, d := range devices {
		if d.Active {
			targets = append(targets, d.ToDelivery())
		}
	}
	outcomes := sender.Send(ctx, msg, targets)
	final := job.Attempt >= job.MaxAttempts
	if err := s.settle(context.WithoutCancel(ctx), m, conv, outcomes, claimed, "the device was deactivated", final); err != nil {
		return err
	}
	for _, o := range outcomes {
		s.metrics.pushes.WithLabelValues(string(o.Class)).Inc()
		switch o.Class {
		case delivery.ClassRetryable, delivery.ClassThrottled, delivery.ClassNotSent:
			if final {
				return nil // settle marked them failed: no attempt is left
			}
			return errPushesLeft
		}
	}
	return nil
}

// pushMessage is the notification for a message.
func (s *Service) pushMessage(m *Message, conv *Conversation, title string) *delivery.Message {
	msg := &delivery.Message{Title: title, Body: m.Body, Priority: delivery.PriorityHigh,
		CollapseKey: "c" + strconv.FormatInt(conv.ID, 10),
		Data: map[string]string{"herald_type": "message", "conversation_id": strconv.FormatInt(conv.ID, 10),
			"message_id": strconv.FormatInt(m.ID, 10), "receipt": s.ReceiptToken(m.ID, conv.SubscriberID)}}
	if msg.Title == "" {
		msg.Title = m.AuthorName
	}
	if m.ExpiresAt != nil {
		msg.TTL = max(time.Second, time.Until(*m.ExpiresAt))
	}
	for _, b := range m.Buttons {
		msg.Actions = append(msg.Actions, delivery.Action{ID: b.ID, Label: b.Label, URL: b.URL})
	}
	if len(msg.Actions) > 0 {
		msg.Category = "herald_buttons"
	}
	return msg
}

// settle records the outcomes of claimed devices: those without an
// outcome (inactive devices, an expired message) fail with reason.
func (s *Service) settle(ctx context.Context, m *Message, conv *Conversation, outcomes []delivery.Outcome, claimed []int64, reason string, final bool) error {
	ids := make([]int64, 0, len(claimed))
	statuses := make([]string, 0, len(claimed))
	classes := make([]string, 0, len(claimed))
	reasons := make([]string, 0, len(claimed))
	providerIDs := make([]string, 0, len(claimed))
	seen := map[int64]bool{}
	var gone []subscribers.Gone
	for _, o := range outcomes {
		seen[o.DeviceID] = true
		status := "failed"
		switch o.Class {
		case delivery.ClassDelivered:
			status = "delivered"
		case delivery.ClassUnknown:
			status = "unknown"
		case delivery.ClassRetryable, delivery.ClassThrottled, delivery.ClassNotSent:
			if !final {
				status = "pending"
			}
		case delivery.ClassDeviceGone:
			gone = append(gone, subscribers.Gone{DeviceID: o.DeviceID, Reason: o.Reason})
		}
		ids, statuses, classes = append(ids, o.DeviceID), append(statuses, status), append(classes, string(o.Class))
		reasons, providerIDs = append(reasons, o.Reason), append(providerIDs, o.ProviderID)
	}
	for _, id := range claimed {
		if !seen[id] {
			ids, statuses, classes = append(ids, id), append(statuses, "failed"), append(classes, "not_sent")
			reasons, providerIDs = append(reasons, reason), append(providerIDs, "")
		}
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE message_deliveries d SET status = u.status, outcome = u.class, reason = nullif(u.reason, ''),
				provider_id = nullif(u.provider_id, ''), finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END
			FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(device_id, status, class, reason, provider_id)
			WHERE d.message_id = $1 AND d.device_id = u.device_id AND d.status = 'sending'`,
			m.ID, ids, statuses, classes, reasons, providerIDs); err != nil {
			return fmt.Errorf("conversations: record deliveries: %w", err)
		}
		if len(gone) > 0 {
			// The version is the row's own: a token re-registered since the
			// push is a new version and stays.
			if _, err := tx.Exec(ctx, `UPDATE devices SET active = false, deactivated_at = now(), deactivated_reason = g.reason
				FROM unnest($1::bigint[], $2::text[]) AS g(id, reason) WHERE devices.id = g.id AND devices.active`,
				goneIDs(gone), goneReasons(gone)); err != nil {
				return fmt.Errorf("conversations: deactivate devices: %w", err)
			}
		}
		var delivered, failed, unknown, pending int
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'failed'),
			count(*) FILTER (WHERE status = 'unknown'), count(*) FILTER (WHERE status IN ('pending', 'sending'))
			FROM message_deliveries WHERE message_id = $1`, m.ID).Scan(&delivered, &failed, &unknown, &pending); err != nil {
			return fmt.Errorf("conversations: count deliveries: %w", err)
		}
		return recordEvent(ctx, tx, audit.System("conversation push"), "conversation.delivery", conv, map[string]any{
			"message_id": m.ID, "sent": delivered, "failed": failed, "unknown": unknown, "pending": pending})
	})
}

func goneIDs(g []subscribers.Gone) []int64 {
	out := make([]int64, len(g))
	for i := range g {
		out[i] = g[i].DeviceID
	}
	return out
}

func goneReasons(g []subscribers.Gone) []string {
	out := make([]string, len(g))
	for i := range g {
		out[i] = g[i].Reason
	}
	return out
}

// unclaim hands claimed devices back for the next attempt when the push
// could not start (no sender): nothing left the process.
func (s *Service) unclaim(ctx context.Context, messageID int64, claimed []int64) error {
	_, err := s.pool.Exec(context.WithoutCancel(ctx), `UPDATE message_deliveries SET status = 'pending'
		WHERE message_id = $1 AND device_id = ANY($2) AND status = 'sending'`, messageID, claimed)
	if err != nil {
		return fmt.Errorf("conversations: hand back deliveries: %w", err)
	}
	return nil
}
