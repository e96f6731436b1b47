package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
)

// Entry is one audit log entry.
type Entry struct {
	ID         int64          `json:"id"`
	At         time.Time      `json:"at"`
	ActorType  Kind           `json:"actor_type"`
	ActorID    int64          `json:"actor_id"`
	ActorLabel string         `json:"actor_label"`
	ActorRole  string         `json:"actor_role"`
	Address    string         `json:"address,omitempty"`
	Action     string         `json:"action"`
	ObjectType string         `json:"object_type"`
	ObjectID   string         `json:"object_id"`
	Summary    map[string]any `json:"summary"`
}

// Filter narrows a listing of the audit log; zero fields do not filter.
type Filter struct {
	ActorType  Kind
	ActorID    int64
	ObjectType string
	ObjectID   string
	Action     string
	Since      time.Time // at or after
	Until      time.Time // before
	// Before is the id of the last entry of the previous page: entries are
	// listed newest first.
	Before int64
	// Limit is the page size, 1 to 500; 0 means 100.
	Limit int
}

// List returns one page of audit entries matching f, newest first.
func List(ctx context.Context, db database.DB, f Filter) ([]Entry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.ActorType != "" {
		add("actor_type = $%d", string(f.ActorType))
	}
	if f.ActorID != 0 {
		add("actor_id = $%d", f.ActorID)
	}
	if f.ObjectType != "" {
		add("object_type = $%d", f.ObjectType)
	}
	if f.ObjectID != "" {
		add("object_id = $%d", f.ObjectID)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("at < $%d", f.Until)
	}
	if f.Before > 0 {
		add("id < $%d", f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	q := `
		SELECT id, at, actor_type, actor_id, actor_label, actor_role, host(address), action, object_type, object_id, summary
		FROM audit_log`
	if len(where) > 0 {
		q += "\n\t\tWHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf("\n\t\tORDER BY id DESC\n\t\tLIMIT $%d", len(args))
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list entries: %w", err)
	}
	defer rows.Close()
	entries := []Entry{}
	for rows.Next() {
		var e Entry
		var addr *string
		var summary []byte
		if err := rows.Scan(&e.ID, &e.At, &e.ActorType, &e.ActorID, &e.ActorLabel, &e.ActorRole, &addr,
			&e.Action, &e.ObjectType, &e.ObjectID, &summary); err != nil {
			return nil, fmt.Errorf("audit: unable to fetch entry: %w", err)
		}
		if addr != nil {
			e.Address = *addr
		}
		if err := json.Unmarshal(summary, &e.Summary); err != nil {
			return nil, fmt.Errorf("audit: entry %d summary: %w", e.ID, err)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: list entries: %w", err)
	}
	return entries, nil
}

// Event is one outbox event.
type Event struct {
	ID         int64           `json:"id"`
	Position   Position        `json:"position"`
	At         time.Time       `json:"at"`
	Topic      string          `json:"topic"`
	ObjectType string          `json:"object_type"`
	ObjectID   string          `json:"object_id"`
	Actor      string          `json:"actor"`
	Payload    json.RawMessage `json:"payload"`
}

// EventsAfter returns up to limit outbox events after position after, in
// commit order. It returns only events whose transactions, and all
// transactions that began writing before them, have ended: a reader that
// resumes from the last position it saw misses nothing and sees nothing
// twice, however many writers commit at once.
func EventsAfter(ctx context.Context, db database.DB, after Position, limit int) ([]Event, error) {
	const q = `
		SELECT id, tx::text::bigint, at, topic, object_type, object_id, actor, payload
		FROM outbox
		WHERE (tx, id) > ($1::text::xid8, $2)
		  AND tx < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY tx, id
		LIMIT $3`
	rows, err := db.Query(ctx, q, strconv.FormatUint(after.Tx, 10), after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: read outbox: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		var tx int64
		err := row.Scan(&e.ID, &tx, &e.At, &e.Topic, &e.ObjectType, &e.ObjectID, &e.Actor, &e.Payload)
		e.Position = Position{Tx: uint64(tx), ID: e.ID}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: unable to fetch outbox event: %w", err)
	}
	return events, nil
}

// Head returns the position of the newest event a reader may see now: a
// reader that starts there sees only what happens from now on.
func Head(ctx context.Context, db database.DB) (Position, error) {
	const q = `
		SELECT coalesce(max(tx)::text::bigint, 0), coalesce(max(id), 0) FROM (
			SELECT tx, id FROM outbox
			WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY tx DESC, id DESC LIMIT 1) last`
	var tx, id int64
	if err := db.QueryRow(ctx, q).Scan(&tx, &id); err != nil {
		return Position{}, fmt.Errorf("audit: outbox head: %w", err)
	}
	return Position{Tx: uint64(tx), ID: id}, nil
}
