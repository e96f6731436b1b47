package subscribers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
)

// MembershipStatus is a subscriber's standing on one list.
type MembershipStatus string

// Membership statuses.
const (
	StatusPending      MembershipStatus = "pending"
	StatusConfirmed    MembershipStatus = "confirmed"
	StatusUnsubscribed MembershipStatus = "unsubscribed"
)

// Membership is a subscriber on a list.
type Membership struct {
	ListID         int64            `json:"list_id"`
	ListSlug       string           `json:"list"`
	ListName       string           `json:"list_name"`
	SubscriberID   int64            `json:"subscriber_id"`
	Status         MembershipStatus `json:"status"`
	CreatedAt      time.Time        `json:"created_at"`
	PendingAt      *time.Time       `json:"pending_at"`
	ConfirmedAt    *time.Time       `json:"confirmed_at"`
	UnsubscribedAt *time.Time       `json:"unsubscribed_at"`
}

// Requested is what Request did.
type Requested struct {
	// Status is the membership's status after the call.
	Status MembershipStatus
	// Changed says the call made a new request (or, for single opt-in, a
	// confirmation): the caller records consent and, when pending, sends a
	// confirmation for it.
	Changed bool
	// PendingAt names the pending request: when it was made. A confirmation
	// is for one request.
	PendingAt time.Time
}

// Request asks for a membership: with double opt-in it becomes pending (and
// the caller sends a confirmation), with single opt-in confirmed. A confirmed
// membership stays confirmed. A membership that has been pending for less
// than repeatAfter is left as it is: asking again so soon is the same
// request (a double tap, a reloaded page, an app retrying), not a new one.
func Request(ctx context.Context, db database.DB, list *List, subscriberID int64, repeatAfter time.Duration) (Requested, error) {
	target := StatusPending
	if list.OptIn == "single" {
		target = StatusConfirmed
	}
	var r Requested
	var pendingAt *time.Time
	// ON CONFLICT locks the existing row even when its WHERE leaves it
	// alone, so a concurrent second request waits for the first and then
	// sees it as recent.
	// The list is locked as a foreign key would (see migration 010): it
	// cannot be deleted before this commits.
	err := db.QueryRow(ctx, `WITH l AS (SELECT id FROM lists WHERE id = $1 FOR KEY SHARE)
		INSERT INTO memberships (list_id, subscriber_id, status, pending_at, confirmed_at)
		SELECT l.id, $2::bigint, $3::text, CASE WHEN $3::text = 'pending' THEN now() END,
			CASE WHEN $3::text = 'confirmed' THEN now() END FROM l
		ON CONFLICT (list_id, subscriber_id) DO UPDATE SET
			status = EXCLUDED.status, pending_at = EXCLUDED.pending_at,
			confirmed_at = EXCLUDED.confirmed_at, unsubscribed_at = NULL, updated_at = now()
		WHERE memberships.status = 'unsubscribed'
			OR (memberships.status = 'pending' AND (EXCLUDED.status = 'confirmed' OR memberships.pending_at IS NULL
				OR memberships.pending_at <= now() - $4::interval))
		RETURNING status, pending_at`, list.ID, subscriberID, target, repeatAfter).Scan(&r.Status, &pendingAt)
	if errors.Is(err, pgx.ErrNoRows) {
		// Left alone: confirmed already, or pending since moments ago.
		err = db.QueryRow(ctx, `SELECT status, pending_at FROM memberships WHERE list_id = $1 AND subscriber_id = $2`,
			list.ID, subscriberID).Scan(&r.Status, &pendingAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return Requested{}, fmt.Errorf("%w: list %d was deleted", ErrNotFound, list.ID)
		}
		if err != nil {
			return Requested{}, fmt.Errorf("subscribers: request membership: %w", err)
		}
	} else if err != nil {
		return Requested{}, fmt.Errorf("subscribers: request membership: %w", err)
	} else {
		r.Changed = true
	}
	if pendingAt != nil {
		r.PendingAt = *pendingAt
	}
	return r, nil
}

// Confirm turns a pending membership into a confirmed one. It reports false
// when there was no pending membership to confirm.
func Confirm(ctx context.Context, db database.DB, listID, subscriberID int64) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE memberships SET status = 'confirmed', confirmed_at = now(), updated_at = now()
		WHERE list_id = $1 AND subscriber_id = $2 AND status = 'pending'`, listID, subscriberID)
	if err != nil {
		return false, fmt.Errorf("subscribers: confirm membership: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetConfirmed makes a membership confirmed whatever it was, for admins and
// imports that hold proof of consent. It reports whether anything changed.
func SetConfirmed(ctx context.Context, db database.DB, listID, subscriberID int64) (bool, error) {
	tag, err := db.Exec(ctx, `WITH l AS (SELECT id FROM lists WHERE id = $1 FOR KEY SHARE)
		INSERT INTO memberships (list_id, subscriber_id, status, confirmed_at)
		SELECT l.id, $2::bigint, 'confirmed', now() FROM l
		ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = 'confirmed', confirmed_at = now(),
			unsubscribed_at = NULL, updated_at = now()
		WHERE memberships.status <> 'confirmed'`, listID, subscriberID)
	if err != nil {
		return false, fmt.Errorf("subscribers: confirm membership: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Unsubscribe leaves a list, or every list when listID is 0. It returns the
// ids of the lists actually left, so callers can record consent for each.
func Unsubscribe(ctx context.Context, db database.DB, listID, subscriberID int64) ([]int64, error) {
	rows, err := db.Query(ctx, `UPDATE memberships SET status = 'unsubscribed', unsubscribed_at = now(), updated_at = now()
		WHERE subscriber_id = $2 AND ($1::bigint = 0 OR list_id = $1::bigint) AND status <> 'unsubscribed'
		RETURNING list_id`, listID, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("subscribers: unsubscribe: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("subscribers: unsubscribe: %w", err)
	}
	return ids, nil
}

// Memberships returns a subscriber's memberships with their lists.
func Memberships(ctx context.Context, db database.DB, subscriberID int64) ([]Membership, error) {
	rows, err := db.Query(ctx, `SELECT m.list_id, l.slug, l.name, m.subscriber_id, m.status, m.created_at,
			m.pending_at, m.confirmed_at, m.unsubscribed_at
		FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = $1 ORDER BY l.slug`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("subscribers: memberships: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) {
		var m Membership
		err := r.Scan(&m.ListID, &m.ListSlug, &m.ListName, &m.SubscriberID, &m.Status, &m.CreatedAt,
			&m.PendingAt, &m.ConfirmedAt, &m.UnsubscribedAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("subscribers: memberships: %w", err)
	}
	return out, nil
}

// MembershipStatusOf returns one membership's status, or ErrNotFound.
func MembershipStatusOf(ctx context.Context, db database.DB, listID, subscriberID int64) (MembershipStatus, error) {
	var s MembershipStatus
	err := db.QueryRow(ctx, `SELECT status FROM memberships WHERE list_id = $1 AND subscriber_id = $2`, listID, subscriberID).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("subscribers: membership status: %w", err)
	}
	return s, nil
}

// PurgePending deletes memberships left pending since before cutoff and
// returns how many. The consent record of the request stays.
func PurgePending(ctx context.Context, db database.DB, cutoff time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM memberships WHERE status = 'pending' AND pending_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("subscribers: purge pending: %w", err)
	}
	return tag.RowsAffected(), nil
}
