package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/herald-im/herald/database"
)

// Channel is the PostgreSQL notification channel that announces new outbox
// events. Its payload is empty: listeners read the events from the outbox.
const Channel = "herald_outbox"

// Notifier tells listening processes that new outbox events committed. It
// sends at most one NOTIFY per Debounce however often it is poked, from
// outside any write transaction: a NOTIFY inside every write transaction
// takes a global lock at commit and serialises writers under load.
type Notifier struct {
	db       database.DB
	logger   *slog.Logger
	debounce time.Duration
	wake     chan struct{}
}

// NewNotifier returns a Notifier that notifies through db. Run must be
// running for pokes to be sent.
func NewNotifier(db database.DB, debounce time.Duration, logger *slog.Logger) *Notifier {
	if debounce <= 0 {
		debounce = 5 * time.Millisecond
	}
	return &Notifier{db: db, logger: logger, debounce: debounce, wake: make(chan struct{}, 1)}
}

// Poke asks for a notification soon. Call it after a commit that wrote
// events. It never blocks; a nil Notifier does nothing (listeners then find
// events by their periodic read).
func (n *Notifier) Poke() {
	if n == nil {
		return
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run sends notifications until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		// Pokes that arrive while this one is on its way fold into the next.
		if _, err := n.db.Exec(ctx, "SELECT pg_notify($1, '')", Channel); err != nil && ctx.Err() == nil {
			// Listeners still read the outbox periodically: a lost
			// notification delays events, it does not lose them.
			n.logger.Warn("outbox notify failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.debounce):
		}
	}
}
