package optin

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// SetMembership confirms or ends a subscriber's membership of a list for
// staff: consent obtained elsewhere (ev says how) or a request by phone or
// letter. It records consent (source admin) and the audit entry with the
// change, and returns the membership's status after it.
func (s *Service) SetMembership(ctx context.Context, actor audit.Actor, listSlug string, subscriberID int64,
	status subscribers.MembershipStatus, ev subscribers.Evidence) (subscribers.MembershipStatus, error) {
	if status != subscribers.StatusConfirmed && status != subscribers.StatusUnsubscribed {
		return "", invalid.Field("status", "must be confirmed or unsubscribed")
	}
	list, err := subscribers.GetList(ctx, s.pool, listSlug)
	if err != nil {
		return "", err
	}
	sub, err := subscribers.Get(ctx, s.pool, subscriberID)
	if err != nil {
		return "", err
	}
	if sub.State == subscribers.StateErased {
		return "", invalid.Field("id", "the subscriber was erased")
	}
	if status == subscribers.StatusUnsubscribed {
		err = s.Unsubscribe(ctx, actor, subscriberID, list.ID, ev)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			changed, err := subscribers.SetConfirmed(ctx, tx, list.ID, subscriberID)
			if err != nil || !changed {
				return err
			}
			if err := subscribers.RecordConsent(ctx, tx, subscriberID, subscribers.ActionConfirm, ev, 0, list.ID); err != nil {
				return err
			}
			return audit.Record(ctx, tx, actor, audit.Change{Action: "membership.confirm", ObjectType: "subscriber",
				ObjectID: strconv.FormatInt(subscriberID, 10), Summary: map[string]any{"list_id": list.ID, "source": ev.Source, "subscriber_id": subscriberID}})
		})
	}
	if err != nil {
		return "", err
	}
	return subscribers.MembershipStatusOf(ctx, s.pool, list.ID, subscriberID)
}

// Export is everything Herald holds about a subscriber, read in one
// snapshot (GDPR art. 15 and 20).
type Export struct {
	*subscribers.Export
	Conversations []conversations.Conversation `json:"conversations"`
	// Attachments are the files the subscriber sent, with their bytes.
	Attachments []conversations.ExportedAttachment `json:"attachments"`
	// CampaignReplies are the quick-reply buttons pressed, which outlive
	// the conversations the replies landed in.
	CampaignReplies []conversations.CampaignReply `json:"campaign_replies"`
}

// Export reads everything held about a subscriber in one consistent
// snapshot.
func (s *Service) Export(ctx context.Context, subscriberID int64) (*Export, error) {
	var out Export
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if out.Export, err = subscribers.ExportData(ctx, tx, subscriberID); err != nil {
			return err
		}
		if out.Conversations, out.Attachments, err = conversations.OfSubscriber(ctx, tx, s.cfg.Attachments, subscriberID); err != nil {
			return err
		}
		out.CampaignReplies, err = conversations.CampaignReplies(ctx, tx, subscriberID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("optin: export subscriber %d: %w", subscriberID, err)
	}
	return &out, nil
}

// Erase removes a subscriber's personal data and conversations (GDPR art.
// 17); consent records stay, anonymised, and the audit entry names only the
// id.
func (s *Service) Erase(ctx context.Context, actor audit.Actor, subscriberID int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := subscribers.Erase(ctx, tx, subscriberID); err != nil {
			return err
		}
		if err := conversations.Erase(ctx, tx, s.cfg.Attachments, subscriberID); err != nil {
			return err
		}
		for _, erase := range s.cfg.OnErase {
			if err := erase(ctx, tx, subscriberID); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "subscriber.erase", ObjectType: "subscriber",
			ObjectID: strconv.FormatInt(subscriberID, 10), Summary: map[string]any{"subscriber_id": subscriberID}})
	})
}
