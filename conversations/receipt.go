package conversations

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// ReceiptPrefix starts every message receipt token, so that one receipt
// endpoint can tell them from campaign receipt tokens.
const ReceiptPrefix = "m_"

// ReceiptToken is the token a device reports receipts and button taps
// with for one message to one subscriber. It travels in the push's data:
// holding it proves the push arrived, and it names nobody by itself.
func (s *Service) ReceiptToken(messageID, subscriberID int64) string {
	payload := binary.AppendUvarint(nil, uint64(messageID))
	payload = binary.AppendUvarint(payload, uint64(subscriberID))
	mac := hmac.New(sha256.New, s.receiptKey)
	mac.Write(payload)
	return ReceiptPrefix + base64.RawURLEncoding.EncodeToString(append(payload, mac.Sum(nil)[:16]...))
}

func (s *Service) verifyReceipt(token string) (messageID, subscriberID int64, err error) {
	raw, ok := strings.CutPrefix(token, ReceiptPrefix)
	if !ok || len(token) > 120 {
		return 0, 0, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < 18 {
		return 0, 0, ErrBadToken
	}
	payload, sum := b[:len(b)-16], b[len(b)-16:]
	mac := hmac.New(sha256.New, s.receiptKey)
	mac.Write(payload)
	if !hmac.Equal(mac.Sum(nil)[:16], sum) {
		return 0, 0, ErrBadToken
	}
	m, n := binary.Uvarint(payload)
	if n <= 0 {
		return 0, 0, ErrBadToken
	}
	sub, k := binary.Uvarint(payload[n:])
	if k <= 0 || n+k != len(payload) {
		return 0, 0, ErrBadToken
	}
	return int64(m), int64(sub), nil
}

// Receipt kinds.
const (
	ReceiptDelivered = "delivered"
	ReceiptRead      = "read"
)

// Receipt records that a message reached a device (delivered) or was seen
// (read), reported by the app or service worker with the message's
// receipt token. A receipt for a message already marked so changes
// nothing and is no error.
func (s *Service) Receipt(ctx context.Context, actor audit.Actor, token, kind string) error {
	if kind != ReceiptDelivered && kind != ReceiptRead {
		return invalid.Field("event", "must be delivered or read")
	}
	messageID, subscriberID, err := s.verifyReceipt(token)
	if err != nil {
		return err
	}
	changed := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := `UPDATE conversation_messages m SET delivered_at = now()
			FROM conversations c WHERE m.id = $1 AND c.id = m.conversation_id AND c.subscriber_id = $2
			AND m.delivered_at IS NULL RETURNING m.conversation_id`
		if kind == ReceiptRead {
			q = `UPDATE conversation_messages m SET read_at = now(), delivered_at = coalesce(m.delivered_at, now())
			FROM conversations c WHERE m.id = $1 AND c.id = m.conversation_id AND c.subscriber_id = $2
			AND m.read_at IS NULL RETURNING m.conversation_id`
		}
		var convID int64
		err := tx.QueryRow(ctx, q, messageID, subscriberID).Scan(&convID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // reported before, or erased since
		}
		if err != nil {
			return fmt.Errorf("conversations: receipt: %w", err)
		}
		changed = true
		c, err := getConversation(ctx, tx, convID, "")
		if err != nil {
			return err
		}
		return recordEvent(ctx, tx, subscriberActor(actor, subscriberID), "conversation.receipt", c,
			map[string]any{"message_ids": []int64{messageID}, "receipt": kind})
	})
	if err == nil && changed {
		s.committed()
	}
	return err
}

// Tap records a tap on a message's action button as the subscriber's
// answer: a message with the button's label, linked to the message it
// answers. A tap reported again (a service worker retrying) lands once.
func (s *Service) Tap(ctx context.Context, actor audit.Actor, token, button string) (*Message, error) {
	messageID, subscriberID, err := s.verifyReceipt(token)
	if err != nil {
		return nil, err
	}
	var m *Message
	created := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		answered, err := getMessage(ctx, tx, messageID)
		if err != nil {
			return err
		}
		conv, err := getConversation(ctx, tx, answered.ConversationID, "")
		if err != nil {
			return err
		}
		if conv.SubscriberID != subscriberID || conv.AppID == nil {
			return ErrBadToken
		}
		var label string
		for _, b := range answered.Buttons {
			if b.ID == button && b.URL == "" {
				label = b.Label
			}
		}
		if label == "" {
			return invalid.Field("button", "the message has no such answer button")
		}
		m, _, err = receive(ctx, tx, actor, inbound{subscriberID: subscriberID, appID: *conv.AppID, body: label,
			clientKey: "tap:" + strconv.FormatInt(messageID, 10) + ":" + button, origin: OriginConversation,
			action: &button, replyTo: &messageID})
		if errors.Is(err, errDuplicate) {
			return nil
		}
		created = err == nil
		return err
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.metrics.inbound.Inc()
		s.committed()
	}
	return m, nil
}
