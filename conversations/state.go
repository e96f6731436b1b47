package conversations

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// change runs fn on a locked conversation and records topic with extra.
func (s *Service) change(ctx context.Context, actor audit.Actor, id int64, topic string,
	fn func(tx pgx.Tx, c *Conversation) (map[string]any, error)) (*Conversation, error) {
	var conv *Conversation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getConversation(ctx, tx, id, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		extra, err := fn(tx, c)
		if err != nil {
			return err
		}
		if conv, err = getConversation(ctx, tx, id, ""); err != nil {
			return err
		}
		return recordEvent(ctx, tx, actor, topic, conv, extra)
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	return conv, nil
}

// Resolve marks a conversation done. The subscriber's next message reopens
// it. The agent's freed capacity goes to the next waiting conversation.
func (s *Service) Resolve(ctx context.Context, actor audit.Actor, id int64) (*Conversation, error) {
	conv, err := s.change(ctx, actor, id, "conversation.resolve", func(tx pgx.Tx, c *Conversation) (map[string]any, error) {
		_, err := tx.Exec(ctx, `UPDATE conversations SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
			waiting_since = NULL, unread = 0, updated_at = now() WHERE id = $1`, id)
		return map[string]any{"status": StatusResolved}, err
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: resolve: %w", err)
	}
	if conv.AssigneeID != nil {
		s.drainFor(ctx, *conv.AssigneeID)
	}
	return conv, nil
}

// SetPending marks a conversation as waiting for the subscriber.
func (s *Service) SetPending(ctx context.Context, actor audit.Actor, id int64) (*Conversation, error) {
	return s.change(ctx, actor, id, "conversation.status", func(tx pgx.Tx, c *Conversation) (map[string]any, error) {
		_, err := tx.Exec(ctx, `UPDATE conversations SET status = 'pending', snoozed_until = NULL, resolved_at = NULL,
			updated_at = now() WHERE id = $1`, id)
		return map[string]any{"status": StatusPending}, err
	})
}

// Reopen opens a resolved, pending or snoozed conversation.
func (s *Service) Reopen(ctx context.Context, actor audit.Actor, id int64) (*Conversation, error) {
	return s.change(ctx, actor, id, "conversation.status", func(tx pgx.Tx, c *Conversation) (map[string]any, error) {
		_, err := tx.Exec(ctx, `UPDATE conversations SET status = 'open', snoozed_until = NULL, resolved_at = NULL,
			updated_at = now() WHERE id = $1`, id)
		return map[string]any{"status": StatusOpen}, err
	})
}

// Snooze puts a conversation away until a time: it wakes then (a River
// job scheduled for that moment) or at the subscriber's next message.
func (s *Service) Snooze(ctx context.Context, actor audit.Actor, id int64, until time.Time) (*Conversation, error) {
	if !until.After(s.now()) || until.After(s.now().AddDate(1, 0, 0)) {
		return nil, invalid.Field("until", "must be in the future, within a year")
	}
	return s.change(ctx, actor, id, "conversation.status", func(tx pgx.Tx, c *Conversation) (map[string]any, error) {
		if _, err := tx.Exec(ctx, `UPDATE conversations SET status = 'snoozed', snoozed_until = $2, resolved_at = NULL,
			updated_at = now() WHERE id = $1`, id, until); err != nil {
			return nil, err
		}
		if _, err := s.river.InsertTx(ctx, tx, WakeArgs{ConversationID: id, Until: until}, &river.InsertOpts{ScheduledAt: until}); err != nil {
			return nil, fmt.Errorf("conversations: schedule wake: %w", err)
		}
		return map[string]any{"status": StatusSnoozed, "snoozed_until": until}, nil
	})
}

var labelPattern = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N}_ -]{0,39}$`)

// SetLabels replaces a conversation's labels.
func (s *Service) SetLabels(ctx context.Context, actor audit.Actor, id int64, labels []string) (*Conversation, error) {
	if len(labels) > 20 {
		return nil, invalid.Field("labels", "at most 20 labels")
	}
	clean := make([]string, 0, len(labels))
	for i, l := range labels {
		if !labelPattern.MatchString(l) {
			return nil, invalid.Fieldf(fmt.Sprintf("labels[%d]", i), "1 to 40 letters, digits, spaces, _ or -")
		}
		clean = append(clean, l)
	}
	slices.Sort(clean)
	clean = slices.Compact(clean)
	return s.change(ctx, actor, id, "conversation.labels", func(tx pgx.Tx, c *Conversation) (map[string]any, error) {
		_, err := tx.Exec(ctx, `UPDATE conversations SET labels = $2, updated_at = now() WHERE id = $1`, id, clean)
		return map[string]any{"labels": clean}, err
	})
}

// MarkReadByStaff clears a conversation's unread count.
func (s *Service) MarkReadByStaff(ctx context.Context, actor audit.Actor, id int64) (*Conversation, error) {
	return s.change(ctx, actor, id, "conversation.read", func(tx pgx.Tx, c *Conversation) (map[string]any, error) {
		_, err := tx.Exec(ctx, `UPDATE conversations SET unread = 0 WHERE id = $1`, id)
		return nil, err
	})
}

// WakeArgs wakes a snoozed conversation at its time.
type WakeArgs struct {
	ConversationID int64     `json:"conversation_id"`
	Until          time.Time `json:"until"`
}

// Kind is the job kind.
func (WakeArgs) Kind() string { return "conversations.wake" }

// InsertOpts puts wakes on the conversations queue.
func (WakeArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueConversations} }

// WakeWorker runs WakeArgs.
type WakeWorker struct {
	river.WorkerDefaults[WakeArgs]
	Service *Service
}

// Work opens the conversation if it is still snoozed until that time (a
// later snooze, or a message that woke it already, leaves it alone).
func (w *WakeWorker) Work(ctx context.Context, job *river.Job[WakeArgs]) error {
	s := w.Service
	woke := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = now()
			WHERE id = $1 AND status = 'snoozed' AND snoozed_until <= $2`, job.Args.ConversationID, job.Args.Until.Add(time.Millisecond))
		if err != nil {
			return fmt.Errorf("conversations: wake: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		woke = true
		c, err := getConversation(ctx, tx, job.Args.ConversationID, "")
		if err != nil {
			return err
		}
		return recordEvent(ctx, tx, audit.System("snooze ended"), "conversation.status", c, map[string]any{"status": StatusOpen, "reason": "woke"})
	})
	if err == nil && woke {
		s.committed()
	}
	return err
}
