package optin

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/subscribers"
)

// KeywordUnsubscribe leaves lists because the subscriber sent STOP (or a
// list's own stop word) in their conversation, in the conversation's
// transaction, with a consent record per list left. It returns the lists
// left.
func (s *Service) KeywordUnsubscribe(ctx context.Context, tx pgx.Tx, actor audit.Actor, subscriberID int64, listIDs []int64) ([]int64, error) {
	var left []int64
	for _, id := range listIDs {
		l, err := subscribers.Unsubscribe(ctx, tx, id, subscriberID)
		if err != nil {
			return nil, err
		}
		left = append(left, l...)
	}
	if len(left) == 0 {
		return nil, nil
	}
	ev := subscribers.Evidence{Source: subscribers.SourceKeyword}
	if err := subscribers.RecordConsent(ctx, tx, subscriberID, subscribers.ActionUnsubscribe, ev, 0, left...); err != nil {
		return nil, err
	}
	if err := audit.Record(ctx, tx, as(actor, subscriberID), audit.Change{Action: "membership.unsubscribe", ObjectType: "subscriber",
		ObjectID: strconv.FormatInt(subscriberID, 10), Summary: map[string]any{"list_ids": left, "source": ev.Source,
			"subscriber_id": subscriberID}}); err != nil {
		return nil, err
	}
	return left, nil
}

// KeywordResubscribe rejoins lists the subscriber had left, because they
// sent START in their conversation: their own message from their own
// device is the request and the confirmation at once, recorded as consent
// per list with the list's current consent version.
func (s *Service) KeywordResubscribe(ctx context.Context, tx pgx.Tx, actor audit.Actor, subscriberID int64, listIDs []int64) ([]int64, error) {
	var joined []int64
	for _, id := range listIDs {
		var version int
		err := tx.QueryRow(ctx, `UPDATE memberships m SET status = 'confirmed', confirmed_at = now(), updated_at = now()
			FROM lists l WHERE l.id = m.list_id AND m.list_id = $1 AND m.subscriber_id = $2 AND m.status = 'unsubscribed'
			RETURNING l.consent_version`, id, subscriberID).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("optin: resubscribe by keyword: %w", err)
		}
		ev := subscribers.Evidence{Source: subscribers.SourceKeyword}
		if err := subscribers.RecordConsent(ctx, tx, subscriberID, subscribers.ActionConfirm, ev, version, id); err != nil {
			return nil, err
		}
		joined = append(joined, id)
	}
	if len(joined) == 0 {
		return nil, nil
	}
	if err := audit.Record(ctx, tx, as(actor, subscriberID), audit.Change{Action: "membership.confirm", ObjectType: "subscriber",
		ObjectID: strconv.FormatInt(subscriberID, 10), Summary: map[string]any{"list_ids": joined, "source": "keyword",
			"subscriber_id": subscriberID}}); err != nil {
		return nil, err
	}
	return joined, nil
}
