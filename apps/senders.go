package apps

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/delivery"
)

// Senders keeps one delivery.Sender per app, rebuilt when the app's secrets
// change, so provider connections and cached tokens live as long as possible.
type Senders struct {
	pool    *pgxpool.Pool
	store   *Store
	options delivery.Options

	mu      sync.Mutex
	senders map[int64]cachedSender
}

type cachedSender struct {
	sender  *delivery.Sender
	version time.Time
}

// NewSenders returns an empty cache.
func NewSenders(pool *pgxpool.Pool, store *Store, opts delivery.Options, logger *slog.Logger) *Senders {
	opts.Logger = logger
	return &Senders{pool: pool, store: store, options: opts, senders: map[int64]cachedSender{}}
}

// For returns the sender for an app.
func (s *Senders) For(ctx context.Context, appID int64) (*delivery.Sender, error) {
	var version time.Time
	if err := s.pool.QueryRow(ctx, `SELECT updated_at FROM apps WHERE id = $1`, appID).Scan(&version); err != nil {
		return nil, fmt.Errorf("apps: sender for app %d: %w", appID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.senders[appID]; ok && c.version.Equal(version) {
		return c.sender, nil
	}
	sec, err := s.store.Secrets(ctx, s.pool, appID)
	if err != nil {
		return nil, err
	}
	sender, err := delivery.NewSender(ctx, sec.Credentials, s.options)
	if err != nil {
		return nil, fmt.Errorf("apps: sender for app %d: %w", appID, err)
	}
	s.senders[appID] = cachedSender{sender: sender, version: version}
	return sender, nil
}
