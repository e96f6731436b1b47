package campaigns

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/delivery"
)

// ErrBadToken is returned for click and action tokens that do not verify.
var ErrBadToken = errors.New("campaigns: bad tracking token")

// Tracking counts per campaign, never per person: a click token names the
// campaign, the locale variant and the platform, so the redirect finds the
// target URL without storing who clicked.
func (s *Service) sign(payload []byte) string {
	m := hmac.New(sha256.New, s.clickKey)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(append(payload, m.Sum(nil)[:12]...))
}

func (s *Service) verify(token string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 13 || len(token) > 200 {
		return nil, ErrBadToken
	}
	payload, mac := b[:len(b)-12], b[len(b)-12:]
	m := hmac.New(sha256.New, s.clickKey)
	m.Write(payload)
	if !hmac.Equal(m.Sum(nil)[:12], mac) {
		return nil, ErrBadToken
	}
	return payload, nil
}

func (s *Service) clickURL(campaignID int64, variant string, p delivery.Platform) string {
	payload := binary.AppendUvarint([]byte{'c'}, uint64(campaignID))
	payload = append(payload, []byte(string(p)+"|"+variant)...)
	return s.cfg.PublicURL + "/c/" + s.sign(payload)
}

func (s *Service) actionToken(campaignID int64) string {
	return s.sign(binary.AppendUvarint([]byte{'a'}, uint64(campaignID)))
}

// replyToken names the campaign and the subscriber, so that a quick reply
// lands in that subscriber's conversation. It is made per device.
func (s *Service) replyToken(campaignID, subscriberID int64) string {
	payload := binary.AppendUvarint([]byte{'r'}, uint64(campaignID))
	return s.sign(binary.AppendUvarint(payload, uint64(subscriberID)))
}

// Click counts a tap on a campaign's notification and returns where to go.
func (s *Service) Click(ctx context.Context, token string) (string, error) {
	payload, err := s.verify(token)
	if err != nil || payload[0] != 'c' {
		return "", ErrBadToken
	}
	id, n := binary.Uvarint(payload[1:])
	if n <= 0 {
		return "", ErrBadToken
	}
	platform, variant, _ := strings.Cut(string(payload[1+n:]), "|")
	c, err := s.Get(ctx, int64(id))
	if err != nil {
		return "", err
	}
	t := c.Content.variant(variant)
	if o, ok := c.Content.Overrides[platform]; ok {
		t = overlay(t, o)
	}
	if t.URL == "" {
		return "", ErrBadToken
	}
	if _, err := s.pool.Exec(ctx, `UPDATE campaigns SET clicks = clicks + 1 WHERE id = $1`, c.ID); err != nil {
		return "", fmt.Errorf("campaigns: count click: %w", err)
	}
	return t.URL, nil
}

// RecordAction counts a tap on an action button ("a0".."a2"), reported by the
// service worker or app with the message data's campaign token, or for a
// reply button its reply_token: the reply text then lands in the
// subscriber's conversation, in the same transaction as the count, with
// its event (actor: the subscriber the reply token names). A plain tap is a
// count and leaves no record of who tapped.
func (s *Service) RecordAction(ctx context.Context, actor audit.Actor, token, action string) error {
	payload, err := s.verify(token)
	if err != nil || (payload[0] != 'a' && payload[0] != 'r') {
		return ErrBadToken
	}
	id, n := binary.Uvarint(payload[1:])
	if n <= 0 {
		return ErrBadToken
	}
	var subscriberID uint64
	if payload[0] == 'r' {
		var m int
		if subscriberID, m = binary.Uvarint(payload[1+n:]); m <= 0 {
			return ErrBadToken
		}
	}
	c, err := s.Get(ctx, int64(id))
	if err != nil {
		return err
	}
	var i int
	if _, err := fmt.Sscanf(action, "a%d", &i); err != nil || i < 0 || i >= len(c.Content.Actions) || action != fmt.Sprintf("a%d", i) {
		return fmt.Errorf("%w: no action %q", ErrBadToken, action)
	}
	a := c.Content.Actions[i]
	if a.Type == "reply" && subscriberID == 0 {
		return fmt.Errorf("%w: a reply needs the message's reply_token", ErrBadToken)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		reply := 0
		if a.Type == "reply" {
			reply = 1
			_, added, err := conversations.CampaignReplyInTx(ctx, tx, actor, int64(subscriberID), c.AppID, c.ID, action, a.ReplyText)
			if err != nil {
				return err
			}
			if !added {
				return nil // the same reply posted again: it landed and counted the first time
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET
			action_taps = jsonb_set(action_taps, ARRAY[$2], to_jsonb(coalesce((action_taps->>$2)::bigint, 0) + 1)),
			replies = replies + $3 WHERE id = $1`, c.ID, action, reply); err != nil {
			return fmt.Errorf("campaigns: count action: %w", err)
		}
		return nil
	})
}
