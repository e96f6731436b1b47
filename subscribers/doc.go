// Package subscribers owns the people Herald reaches and what they agreed to:
// subscribers, their devices, lists, list memberships (separate from a
// subscriber's own state), the append-only consent records, CSV imports, and
// the GDPR export and erasure of one subscriber's data.
//
// Functions take a database.DB, a pool or a transaction, so that callers such
// as optin can change several of these tables and insert a River job in one
// transaction.
package subscribers

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned when a subscriber, list or device does not exist.
var ErrNotFound = errors.New("subscribers: not found")

// ErrConflict is returned when a unique value (list slug, external id) is taken.
var ErrConflict = errors.New("subscribers: already exists")

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// Page bounds a keyset-paginated listing.
type Page struct {
	// After is the last id of the previous page; 0 starts at the beginning.
	After int64
	// Limit is the page size, 1 to 1000; 0 means 100.
	Limit int
}

func (p Page) limit() int {
	if p.Limit <= 0 {
		return 100
	}
	return min(p.Limit, 1000)
}
