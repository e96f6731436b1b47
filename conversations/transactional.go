package conversations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// Transactional is a message from the company's systems to one subscriber
// (a delivery status, a delayed train, an appointment reminder).
//
// Consent: a service message needs no list membership. It is refused
// (ErrSubscriberGone, nothing stored) for a subscriber who was erased or
// blocked, or who turned service messages off.
type Transactional struct {
	// SubscriberID or ExternalID names the subscriber.
	SubscriberID *int64 `json:"subscriber_id"`
	ExternalID   string `json:"external_id"`
	// AppID is the app whose devices get it.
	AppID int64 `json:"-"`
	// IdempotencyKey makes a retried request land once.
	IdempotencyKey string   `json:"idempotency_key"`
	Title          string   `json:"title"`
	Body           string   `json:"body"`
	Buttons        []Button `json:"buttons"`
	// TTLSeconds is how long providers keep the message for an offline
	// device, and how long Herald tries; 0 means 24 hours.
	TTLSeconds int `json:"ttl_seconds"`
}

// SendTransactional stores a transactional message in the subscriber's
// conversation (without putting it in the inbox: a reply does that) and
// pushes it at once on the conversations queue to all their active devices
// of the app. A request repeated with the same idempotency key returns
// the first message and created false.
func (s *Service) SendTransactional(ctx context.Context, actor audit.Actor, author Author, t Transactional) (*Message, bool, error) {
	if t.IdempotencyKey == "" {
		return nil, false, invalid.Field("idempotency_key", "is required")
	}
	if err := validClientKey("idempotency_key", t.IdempotencyKey); err != nil {
		return nil, false, err
	}
	body, err := validBody("body", t.Body, false)
	if err != nil {
		return nil, false, err
	}
	title, err := validBody("title", t.Title, true)
	if err != nil {
		return nil, false, err
	}
	if len(title) > 200 {
		return nil, false, invalid.Field("title", "is longer than 200 bytes")
	}
	buttons, err := validButtons(t.Buttons)
	if err != nil {
		return nil, false, err
	}
	if t.TTLSeconds < 0 || t.TTLSeconds > 28*24*3600 {
		return nil, false, invalid.Field("ttl_seconds", "must be between 0 and 2419200 (4 weeks)")
	}
	ttl := time.Duration(t.TTLSeconds) * time.Second
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	expires := s.now().Add(ttl)
	var m *Message
	created := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		subID, err := s.resolveSubscriber(ctx, tx, t.SubscriberID, t.ExternalID)
		if err != nil {
			return err
		}
		var service bool
		if err := tx.QueryRow(ctx, `SELECT service_messages FROM subscribers WHERE id = $1`, subID).Scan(&service); err != nil {
			return fmt.Errorf("conversations: subscriber: %w", err)
		}
		if !service {
			return fmt.Errorf("%w: they turned service messages off", ErrSubscriberGone)
		}
		conv, _, err := openConversation(ctx, tx, subID, t.AppID, true)
		if err != nil {
			return err
		}
		key := "tx:" + t.IdempotencyKey
		if m, err = byClientKey(ctx, tx, conv.ID, key); err != nil || m != nil {
			return err
		}
		name := author.Name
		o := outbound{conv: conv, author: AuthorSystem, authorName: name, body: body, origin: OriginTransactional,
			buttons: buttons, clientKey: key, expiresAt: &expires, title: title}
		if author.KeyID != 0 {
			o.authorKeyID = &author.KeyID
		} else if author.UserID != 0 {
			o.authorUserID = &author.UserID
		}
		var devices int
		if m, devices, err = s.post(ctx, tx, o); err != nil {
			return err
		}
		created = true
		if _, err := tx.Exec(ctx, `UPDATE conversations SET last_message_at = now(), last_message_id = $2, updated_at = now()
			WHERE id = $1`, conv.ID, m.ID); err != nil {
			return fmt.Errorf("conversations: update conversation: %w", err)
		}
		return recordEvent(ctx, tx, actor, "conversation.transactional", conv, map[string]any{"message": m,
			"author": AuthorSystem, "private": false, "devices": devices})
	})
	if err != nil {
		return nil, false, err
	}
	if created {
		s.metrics.outbound.Inc()
		s.committed()
	}
	return m, created, nil
}

func (s *Service) resolveSubscriber(ctx context.Context, tx pgx.Tx, id *int64, externalID string) (int64, error) {
	var subID int64
	var err error
	switch {
	case id != nil && externalID != "":
		return 0, invalid.Field("subscriber_id", "name the subscriber by subscriber_id or external_id, not both")
	case id != nil:
		err = tx.QueryRow(ctx, `SELECT id FROM subscribers WHERE id = $1`, *id).Scan(&subID)
	case externalID != "":
		if _, verr := validBody("external_id", externalID, false); verr != nil {
			return 0, verr
		}
		err = tx.QueryRow(ctx, `SELECT id FROM subscribers WHERE external_id = $1`, externalID).Scan(&subID)
	default:
		return 0, invalid.Field("subscriber_id", "name the subscriber by subscriber_id or external_id")
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, invalid.Field("subscriber_id", "no such subscriber")
	}
	if err != nil {
		return 0, fmt.Errorf("conversations: find subscriber: %w", err)
	}
	return subID, nil
}
