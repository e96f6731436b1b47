package audit

import (
	"errors"
	"strconv"
	"strings"
)

// Position is where an event stands in the outbox's commit order: the id
// of the transaction that wrote it, then its own id. Readers remember the
// last position they saw and ask for what comes after it.
type Position struct {
	Tx uint64 `json:"tx"`
	ID int64  `json:"id"`
}

// ErrBadPosition is returned by ParsePosition for a malformed position.
var ErrBadPosition = errors.New("audit: malformed event position")

// String is the position as one token, "tx-id": the id of a Server-Sent
// Event, which a reconnecting client sends back as Last-Event-ID.
func (p Position) String() string {
	return strconv.FormatUint(p.Tx, 10) + "-" + strconv.FormatInt(p.ID, 10)
}

// After reports whether p comes after q.
func (p Position) After(q Position) bool {
	return p.Tx > q.Tx || (p.Tx == q.Tx && p.ID > q.ID)
}

// ParsePosition reads a position written by Position.String.
func ParsePosition(s string) (Position, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok || len(s) > 41 {
		return Position{}, ErrBadPosition
	}
	tx, err := strconv.ParseUint(a, 10, 63)
	if err != nil {
		return Position{}, ErrBadPosition
	}
	id, err := strconv.ParseInt(b, 10, 64)
	if err != nil || id < 0 {
		return Position{}, ErrBadPosition
	}
	return Position{Tx: tx, ID: id}, nil
}
