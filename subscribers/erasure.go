package subscribers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
)

// Export is everything Herald holds about one subscriber (GDPR art. 15, 20).
type Export struct {
	ExportedAt     time.Time       `json:"exported_at"`
	Subscriber     *Subscriber     `json:"subscriber"`
	Devices        []Device        `json:"devices"`
	Memberships    []Membership    `json:"memberships"`
	ConsentRecords []ConsentRecord `json:"consent_records"`
}

// ExportData collects a subscriber's data. Run it in a repeatable-read
// transaction for a consistent picture.
func ExportData(ctx context.Context, db database.DB, id int64) (*Export, error) {
	s, err := Get(ctx, db, id)
	if err != nil {
		return nil, err
	}
	e := &Export{ExportedAt: time.Now().UTC(), Subscriber: s}
	if e.Devices, err = Devices(ctx, db, id); err != nil {
		return nil, err
	}
	if e.Memberships, err = Memberships(ctx, db, id); err != nil {
		return nil, err
	}
	if e.ConsentRecords, err = ConsentRecords(ctx, db, id); err != nil {
		return nil, err
	}
	return e, nil
}

// Erase removes a subscriber's personal data (GDPR art. 17): profile fields,
// devices, tokens and memberships go; the subscriber row stays as an empty
// husk so that consent records keep proving what happened, with the IP
// address truncated to its network and the user agent dropped. Erasing twice
// is not an error.
func Erase(ctx context.Context, tx pgx.Tx, id int64) error {
	var state State
	err := tx.QueryRow(ctx, `SELECT state FROM subscribers WHERE id = $1 FOR UPDATE`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("subscribers: erase %d: %w", id, err)
	}
	if state == StateErased {
		return nil
	}
	stmts := []string{
		`DELETE FROM devices WHERE subscriber_id = $1`,
		`DELETE FROM subscriber_tokens WHERE subscriber_id = $1`,
		`DELETE FROM optin_tokens WHERE subscriber_id = $1`,
		`DELETE FROM memberships WHERE subscriber_id = $1`,
		`UPDATE subscribers SET external_id = NULL, email = NULL, locale = '', timezone = '', attributes = '{}',
			state = 'erased', erased_at = now(), updated_at = now() WHERE id = $1`,
		`UPDATE consent_records SET user_agent = NULL,
			ip = network(set_masklen(ip, CASE WHEN family(ip) = 4 THEN 24 ELSE 48 END))::inet
		 WHERE subscriber_id = $1 AND (user_agent IS NOT NULL OR (ip IS NOT NULL AND masklen(ip) > CASE WHEN family(ip) = 4 THEN 24 ELSE 48 END))`,
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("subscribers: erase %d: %w", id, err)
		}
	}
	return RecordConsent(ctx, tx, id, ActionErase, Evidence{Source: SourceSystem}, 0)
}
