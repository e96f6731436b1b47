package optin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/subscribers"
)

// UnsubscribeURL is a signed one-click link that leaves one list (or every
// list when listID is 0). It works without login, and it keeps working
// after its expiry: leaving must be possible from any message Herald ever
// sent. (The expiry still ends what the link shows beyond that.)
func (s *Service) UnsubscribeURL(subscriberID, listID int64) string {
	t := s.signer.sign(claims{purpose: purposeUnsubscribe, subscriberID: subscriberID, listID: listID,
		expires: s.now().Add(s.cfg.UnsubscribeTokenTTL)})
	return s.cfg.PublicURL + "/u/" + url.PathEscape(t)
}

// PreferencesURL is a signed link to the subscriber's preference page. Once
// it has expired it no longer shows the subscriptions, but still leaves
// every list with one press.
func (s *Service) PreferencesURL(subscriberID int64) string {
	t := s.signer.sign(claims{purpose: purposePreferences, subscriberID: subscriberID,
		expires: s.now().Add(s.cfg.UnsubscribeTokenTTL)})
	return s.cfg.PublicURL + "/preferences/" + url.PathEscape(t)
}

// Unsubscription is what an unsubscribe link would do.
type Unsubscription struct {
	SubscriberID int64
	// List is nil for "every list".
	List *subscribers.List
	// Expired says the link is past its expiry: it still unsubscribes, but
	// leads to nothing more (no preferences link, which would show lists).
	Expired bool
}

// AuthenticUnsubscribe reports whether token is an unsubscribe link Herald
// signed, expired or not, without touching the database: rate limits ask
// it before any work is done.
func (s *Service) AuthenticUnsubscribe(token string) bool {
	_, err := s.signer.verify(token, purposeUnsubscribe, s.now())
	return err == nil || errors.Is(err, ErrTokenExpired)
}

// What names what the link leaves, for people.
func (u *Unsubscription) What() string {
	if u.List == nil {
		return "all lists"
	}
	return u.List.Name
}

// InspectUnsubscribe checks an unsubscribe token for the page. An expired
// but authentic one is good: unsubscribing always works.
func (s *Service) InspectUnsubscribe(ctx context.Context, token string) (*Unsubscription, error) {
	c, err := s.signer.verify(token, purposeUnsubscribe, s.now())
	expired := errors.Is(err, ErrTokenExpired)
	if err != nil && !expired {
		return nil, err
	}
	u := &Unsubscription{SubscriberID: c.subscriberID, Expired: expired}
	if c.listID != 0 {
		u.List, err = subscribers.GetListByID(ctx, s.pool, c.listID)
		if errors.Is(err, subscribers.ErrNotFound) {
			return nil, ErrTokenInvalid // the list was deleted, and its memberships with it
		}
		if err != nil {
			return nil, fmt.Errorf("optin: unsubscribe link: %w", err)
		}
	}
	return u, nil
}

// UnsubscribeByLink performs an unsubscribe link. It is idempotent.
func (s *Service) UnsubscribeByLink(ctx context.Context, actor audit.Actor, token string, client Client) (*Unsubscription, error) {
	u, err := s.InspectUnsubscribe(ctx, token)
	if err != nil {
		return nil, err
	}
	var listID int64
	if u.List != nil {
		listID = u.List.ID
	}
	ev := subscribers.Evidence{Source: subscribers.SourceLink, IP: client.IP, UserAgent: client.UserAgent}
	return u, s.Unsubscribe(ctx, actor, u.SubscriberID, listID, ev)
}

// Unsubscribe leaves a list (0: every list) and records consent for each
// list actually left.
func (s *Service) Unsubscribe(ctx context.Context, actor audit.Actor, subscriberID, listID int64, ev subscribers.Evidence) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		left, err := subscribers.Unsubscribe(ctx, tx, listID, subscriberID)
		if err != nil || len(left) == 0 {
			return err
		}
		if err := subscribers.RecordConsent(ctx, tx, subscriberID, subscribers.ActionUnsubscribe, ev, 0, left...); err != nil {
			return err
		}
		return audit.Record(ctx, tx, as(actor, subscriberID), audit.Change{Action: "membership.unsubscribe", ObjectType: "subscriber",
			ObjectID: strconv.FormatInt(subscriberID, 10), Summary: map[string]any{"list_ids": left, "source": ev.Source, "subscriber_id": subscriberID}})
	})
}

// PreferencesSubscriber checks a preference-page token. For an expired
// but authentic token it returns the subscriber and ErrTokenExpired: the
// page then shows nothing of them, but offers to leave every list.
func (s *Service) PreferencesSubscriber(token string) (int64, error) {
	c, err := s.signer.verify(token, purposePreferences, s.now())
	if err != nil && !errors.Is(err, ErrTokenExpired) {
		return 0, err
	}
	return c.subscriberID, err
}

// Memberships lists a subscriber's lists for a preference page.
func (s *Service) Memberships(ctx context.Context, subscriberID int64) ([]subscribers.Membership, error) {
	m, err := subscribers.Memberships(ctx, s.pool, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("optin: preferences: %w", err)
	}
	return m, nil
}

// ErrNotResubscribable is returned by Resubscribe for a membership that is
// not an unsubscribed one of a public list.
var ErrNotResubscribable = errors.New("optin: this list cannot be joined again from here")

// ErrConsentChanged is returned by Resubscribe when the list's consent text
// changed after the person read it.
var ErrConsentChanged = errors.New("optin: the consent text changed")

// Resubscribe joins again a public list the subscriber had left, from their
// preference page: the press is their consent to the text of consentVersion
// (the one the page showed), recorded with the evidence. No confirmation
// push follows: the preference link reached them on a device or address of
// theirs, which is what a confirmation proves.
func (s *Service) Resubscribe(ctx context.Context, actor audit.Actor, subscriberID, listID int64, consentVersion int,
	ev subscribers.Evidence) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var status subscribers.MembershipStatus
		var visibility, state string
		var version int
		// The subscriber's row is locked too: a block or an erasure
		// committing meanwhile is seen, as Subscribe sees it.
		err := tx.QueryRow(ctx, `SELECT m.status, l.visibility, l.consent_version, s.state
			FROM memberships m JOIN lists l ON l.id = m.list_id JOIN subscribers s ON s.id = m.subscriber_id
			WHERE m.list_id = $1 AND m.subscriber_id = $2 FOR UPDATE OF m, s`, listID, subscriberID).Scan(&status, &visibility, &version, &state)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotResubscribable
		}
		if err != nil {
			return fmt.Errorf("optin: resubscribe: %w", err)
		}
		if status != subscribers.StatusUnsubscribed || visibility != "public" || state != string(subscribers.StateActive) {
			return ErrNotResubscribable
		}
		if version != consentVersion {
			return ErrConsentChanged
		}
		if _, err := subscribers.SetConfirmed(ctx, tx, listID, subscriberID); err != nil {
			return err
		}
		if err := subscribers.RecordConsent(ctx, tx, subscriberID, subscribers.ActionConfirm, ev, version, listID); err != nil {
			return err
		}
		// A confirmation like any other, for the audit log and the
		// webhooks (subscriber.confirmed): the company's systems learn
		// that the person is back.
		return audit.Record(ctx, tx, as(actor, subscriberID), audit.Change{Action: "membership.confirm", ObjectType: "subscriber",
			ObjectID: strconv.FormatInt(subscriberID, 10), Summary: map[string]any{"list_id": listID, "consent_version": version,
				"source": ev.Source, "via": "preferences", "subscriber_id": subscriberID}})
	})
}
