package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Change is one change an actor made, as recorded.
type Change struct {
	// Action names what was done, as object.verb: "list.create",
	// "user.disable", "campaign.pause".
	Action string
	// ObjectType and ObjectID name what it was done to.
	ObjectType string
	ObjectID   string
	// Summary describes the change: field names, ids and counts, never a
	// secret, a password or a subscriber's personal data (the log outlives
	// an erasure). It must marshal to a JSON object; nil is {}.
	Summary map[string]any
	// Event, when set, is the payload of the outbox event; nil uses
	// Summary. Events are for webhooks and live updates, which may need
	// more than the audit log keeps.
	Event map[string]any
	// NoEvent leaves the change out of the outbox (sign-in bookkeeping,
	// say, that no webhook or live view cares about).
	NoEvent bool
}

// ErrNoActor is returned by Record for a change without a valid actor.
var ErrNoActor = errors.New("audit: change without an actor")

// Record writes the side records of change c, made by actor, in tx: an
// audit entry when a user, an API key or an operator made it, and an outbox event
// unless c.NoEvent. The event is stamped with the transaction's id, which
// orders it for readers (see EventsAfter) without a lock shared by all
// writers. Nothing is notified here: a NOTIFY in every write transaction
// serialises commits; writers call a Notifier after they commit.
func Record(ctx context.Context, tx pgx.Tx, actor Actor, c Change) error {
	if !actor.Valid() {
		return fmt.Errorf("%w (%s)", ErrNoActor, c.Action)
	}
	if c.Action == "" || c.ObjectType == "" {
		return fmt.Errorf("audit: record: action and object type are required")
	}
	summary := c.Summary
	if summary == nil {
		summary = map[string]any{}
	}
	summaryJSON, err := json.Marshal(summary)
	if err != nil {
		return fmt.Errorf("audit: record %s: summary: %w", c.Action, err)
	}
	if actor.Audited() {
		var addr any
		if actor.Addr.IsValid() {
			addr = actor.Addr.String()
		}
		const q = `
			INSERT INTO audit_log (actor_type, actor_id, actor_label, actor_role, address, action, object_type, object_id, summary)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
		if _, err := tx.Exec(ctx, q, string(actor.Kind), actor.ID, actor.Label, actor.Role, addr,
			c.Action, c.ObjectType, c.ObjectID, summaryJSON); err != nil {
			return fmt.Errorf("audit: record %s: %w", c.Action, err)
		}
	}
	if c.NoEvent {
		return nil
	}
	eventJSON := summaryJSON
	if c.Event != nil {
		if eventJSON, err = json.Marshal(c.Event); err != nil {
			return fmt.Errorf("audit: record %s: event: %w", c.Action, err)
		}
	}
	const q = `
		INSERT INTO outbox (id, topic, object_type, object_id, actor, payload)
		VALUES (nextval('outbox_id_seq'), $1, $2, $3, $4, $5)`
	if _, err := tx.Exec(ctx, q, c.Action, c.ObjectType, c.ObjectID, actor.String(), eventJSON); err != nil {
		return fmt.Errorf("audit: outbox event %s: %w", c.Action, err)
	}
	return nil
}
