package optin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/subscribers"
)

// ErrNothingToConfirm is returned when a valid link finds no pending
// membership, e.g. after the subscriber left or the request was purged.
var ErrNothingToConfirm = errors.New("optin: there is nothing to confirm")

// Pending is what a confirmation link would confirm.
type Pending struct {
	List         *subscribers.List
	SubscriberID int64
}

// newConfirmToken mints a confirmation link token and stores its hash so
// that it can be used once.
func (s *Service) newConfirmToken(ctx context.Context, db database.DB, subscriberID, listID int64) (string, error) {
	expires := s.now().Add(s.cfg.ConfirmTokenTTL)
	token := s.signer.sign(claims{purpose: purposeConfirm, subscriberID: subscriberID, listID: listID, expires: expires})
	if _, err := db.Exec(ctx, `INSERT INTO optin_tokens (token_hash, subscriber_id, list_id, expires_at) VALUES ($1, $2, $3, $4)`,
		hashToken(token), subscriberID, listID, expires); err != nil {
		return "", fmt.Errorf("optin: store confirm token: %w", err)
	}
	return token, nil
}

// ConfirmURL is the page a confirmation link opens.
func (s *Service) ConfirmURL(token string) string {
	return s.cfg.PublicURL + "/confirm/" + url.PathEscape(token)
}

// InspectConfirm checks a confirmation token without using it, for the page
// that asks for the button press (link scanners only ever GET it).
func (s *Service) InspectConfirm(ctx context.Context, token string) (*Pending, error) {
	c, err := s.signer.verify(token, purposeConfirm, s.now())
	if err != nil {
		return nil, err
	}
	var usedAt *time.Time
	err = s.pool.QueryRow(ctx, `SELECT used_at FROM optin_tokens WHERE token_hash = $1`, hashToken(token)).Scan(&usedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTokenInvalid // signed but never issued here, or purged
	}
	if err != nil {
		return nil, fmt.Errorf("optin: inspect token: %w", err)
	}
	if usedAt != nil {
		return nil, ErrTokenUsed
	}
	list, err := subscribers.GetListByID(ctx, s.pool, c.listID)
	if errors.Is(err, subscribers.ErrNotFound) {
		return nil, ErrNothingToConfirm // the list was deleted
	}
	if err != nil {
		return nil, fmt.Errorf("optin: inspect token: %w", err)
	}
	return &Pending{List: list, SubscriberID: c.subscriberID}, nil
}

// Confirm uses a confirmation token: it marks the token used, confirms the
// membership and records consent, all in one transaction.
func (s *Service) Confirm(ctx context.Context, actor audit.Actor, token string, client Client) (*Pending, error) {
	c, err := s.signer.verify(token, purposeConfirm, s.now())
	if err != nil {
		return nil, err
	}
	var p *Pending
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE optin_tokens SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()`, hashToken(token))
		if err != nil {
			return fmt.Errorf("optin: use token: %w", err)
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			err := tx.QueryRow(ctx, `SELECT true FROM optin_tokens WHERE token_hash = $1`, hashToken(token)).Scan(&exists)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrTokenInvalid // signed but never issued here, or purged
			}
			if err != nil {
				return fmt.Errorf("optin: use token: %w", err)
			}
			return ErrTokenUsed
		}
		list, err := subscribers.GetListByID(ctx, tx, c.listID)
		if errors.Is(err, subscribers.ErrNotFound) {
			return ErrNothingToConfirm // the list was deleted
		}
		if err != nil {
			return fmt.Errorf("optin: confirm: %w", err)
		}
		ok, err := subscribers.Confirm(ctx, tx, c.listID, c.subscriberID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNothingToConfirm
		}
		p = &Pending{List: list, SubscriberID: c.subscriberID}
		ev := subscribers.Evidence{Source: subscribers.SourceLink, IP: client.IP, UserAgent: client.UserAgent}
		if err := subscribers.RecordConsent(ctx, tx, c.subscriberID, subscribers.ActionConfirm, ev, 0, c.listID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, as(actor, c.subscriberID), audit.Change{Action: "membership.confirm", ObjectType: "subscriber",
			ObjectID: strconv.FormatInt(c.subscriberID, 10), Summary: map[string]any{"list_id": c.listID, "subscriber_id": c.subscriberID}})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
