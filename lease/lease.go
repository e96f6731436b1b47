package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockClassID is the first key of every worker lock, the ASCII of "HRLD". The
// second key is hashtext(current_schema() || '/' || id), so that leases in
// different schemas or databases never collide.
const LockClassID int32 = 0x48524c44

// lockKeySQL is the second lock key of the worker id in placeholder or column
// %s. Both the lease and HandBackDead compute it on a connection with the
// same search_path.
const lockKeySQL = `hashtext(coalesce(current_schema(), '') || '/' || %s)`

// statementTimeout bounds each statement and connection attempt on the lock
// connection.
const statementTimeout = 10 * time.Second

// Backoff between attempts to re-take the lock.
const (
	retakeBackoffMin = 100 * time.Millisecond
	retakeBackoffMax = 5 * time.Second
)

var errLockHeld = errors.New("lock held by another session")

// Lease is a held worker identity. Use ID as the River client id while the
// lease is held, call HandBack before the River client starts, and Close
// after it has stopped.
type Lease struct {
	cfg        Config
	id         string
	pool       *pgxpool.Pool
	connConfig *pgx.ConnConfig
	logger     *slog.Logger
	startedAt  time.Time // database clock, read after the lock was taken

	cancel context.CancelFunc
	done   chan struct{}
	conn   *pgx.Conn // owned by run until done is closed, then by Close

	closeOnce sync.Once
	closeErr  error
}

// Acquire takes a worker identity (see Config.ID) and holds it until Close or
// until it is lost. Its lock lives on a connection of its own, opened from a
// copy of the pool's connection config so that search_path carries over.
//
// It fails with an error wrapping ErrIDInUse when the configured id is held
// by a live process, and ErrNoFreeSlot when all of the host's slots are.
func Acquire(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Lease, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Lease{
		cfg:        cfg,
		pool:       pool,
		connConfig: pool.Config().ConnConfig.Copy(),
		logger:     cfg.Logger,
		done:       make(chan struct{}),
	}

	ids := []string{cfg.ID}
	if cfg.ID == "" {
		ids = slotIDs(cfg.Hostname)
	}
	conn, id, err := l.connectAndLock(ctx, ids)
	switch {
	case errors.Is(err, errLockHeld) && cfg.ID != "":
		return nil, fmt.Errorf("%w: %q", ErrIDInUse, cfg.ID)
	case errors.Is(err, errLockHeld):
		return nil, fmt.Errorf("%w: %s to %s are all held", ErrNoFreeSlot, ids[0], ids[len(ids)-1])
	case err != nil:
		return nil, err
	}
	l.id = id

	if err := l.register(ctx, conn); err != nil {
		closeConn(conn)
		return nil, err
	}
	l.logger.InfoContext(ctx, "lease: worker id acquired",
		slog.String("worker_id", l.id), slog.String("hostname", cfg.Hostname),
		slog.Int("pid", os.Getpid()), slog.String("version", cfg.Version))

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	go l.run(runCtx, conn)
	return l, nil
}

// ID is the held worker id, to be used as river.Config.ID.
func (l *Lease) ID() string { return l.id }

// Close stops the heartbeat, deletes the herald_workers row, releases the
// lock and closes the lock connection. When the lock was already lost (the
// connection is gone, or OnLost fired) it leaves the row alone: it may belong
// to the id's next holder. Close is idempotent; later calls return the
// result of the first.
func (l *Lease) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.cancel()
		<-l.done
		conn := l.conn
		l.conn = nil
		if conn == nil || conn.IsClosed() {
			l.logger.InfoContext(ctx, "lease: closed; the lock was already gone", slog.String("worker_id", l.id))
			return
		}
		defer closeConn(conn)
		_, delErr := conn.Exec(ctx, `DELETE FROM herald_workers WHERE id = $1`, l.id)
		if delErr != nil && conn.IsClosed() && ctx.Err() == nil {
			// The connection was dead, and the lock with it.
			l.logger.InfoContext(ctx, "lease: closed; the lock was already gone",
				slog.String("worker_id", l.id), slog.String("error", delErr.Error()))
			return
		}
		var unlockErr error
		if delErr == nil {
			_, unlockErr = conn.Exec(ctx, fmt.Sprintf(`SELECT pg_advisory_unlock($1, `+lockKeySQL+`)`, "$2"), LockClassID, l.id)
		}
		if err := errors.Join(delErr, unlockErr); err != nil {
			// Closing the connection below releases the lock all the same.
			l.closeErr = fmt.Errorf("lease: close %q: %w", l.id, err)
			l.logger.WarnContext(ctx, "lease: close", slog.String("worker_id", l.id), slog.String("error", err.Error()))
			return
		}
		l.logger.InfoContext(ctx, "lease: worker id released", slog.String("worker_id", l.id))
	})
	return l.closeErr
}

// connectAndLock opens a lock connection and takes the first free id of ids.
// It returns errLockHeld when all are held.
func (l *Lease) connectAndLock(ctx context.Context, ids []string) (*pgx.Conn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	connConfig := l.connConfig.Copy()
	if l.cfg.hooks != nil && l.cfg.hooks.connConfig != nil {
		l.cfg.hooks.connConfig(connConfig)
	}
	conn, err := pgx.ConnectConfig(ctx, connConfig)
	if err != nil {
		return nil, "", fmt.Errorf("lease: connect: %w", err)
	}
	for _, id := range ids {
		var ok bool
		err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT pg_try_advisory_lock($1, `+lockKeySQL+`)`, "$2"), LockClassID, id).Scan(&ok)
		if err != nil {
			closeConn(conn)
			return nil, "", fmt.Errorf("lease: take lock %q: %w", id, err)
		}
		if ok {
			return conn, id, nil
		}
		l.logger.DebugContext(ctx, "lease: worker id held by a live process", slog.String("worker_id", id))
	}
	closeConn(conn)
	return nil, "", errLockHeld
}

// register writes the herald_workers row of a newly acquired id and reads
// startedAt, the cutoff of HandBack, from the database clock.
func (l *Lease) register(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	err := conn.QueryRow(ctx, `
		INSERT INTO herald_workers (id, hostname, pid, version, started_at, heartbeat_at)
		VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp())
		ON CONFLICT (id) DO UPDATE SET
			hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, version = EXCLUDED.version,
			started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at
		RETURNING started_at`,
		l.id, l.cfg.Hostname, os.Getpid(), l.cfg.Version).Scan(&l.startedAt)
	if err != nil {
		return fmt.Errorf("lease: register %q: %w", l.id, err)
	}
	return nil
}

// rowIsOurs reports whether the herald_workers row is still the one this
// lease registered. Another process that held the id in the meantime has
// replaced it, or deleted it on Close.
func (l *Lease) rowIsOurs(ctx context.Context, conn *pgx.Conn) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	var ours bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM herald_workers WHERE id = $1 AND started_at = $2)`,
		l.id, l.startedAt).Scan(&ours)
	if err != nil {
		return false, fmt.Errorf("lease: read row of %q: %w", l.id, err)
	}
	return ours, nil
}

// heartbeat writes heartbeat_at on the lock connection, restoring the row
// if someone deleted it.
func (l *Lease) heartbeat(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	tag, err := conn.Exec(ctx, `UPDATE herald_workers SET heartbeat_at = now() WHERE id = $1`, l.id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	_, err = conn.Exec(ctx, `
		INSERT INTO herald_workers (id, hostname, pid, version, started_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
		l.id, l.cfg.Hostname, os.Getpid(), l.cfg.Version, l.startedAt)
	return err
}

// run heartbeats until Close, re-taking the lock when its connection fails,
// and reports a lost identity through OnLost.
func (l *Lease) run(ctx context.Context, conn *pgx.Conn) {
	err := l.loop(ctx, conn)
	if err != nil {
		l.logger.ErrorContext(ctx, "lease: worker id lost", slog.String("worker_id", l.id), slog.String("error", err.Error()))
	}
	close(l.done)
	if err != nil && l.cfg.OnLost != nil {
		l.cfg.OnLost(err)
	}
}

// loop returns nil when ctx is done, leaving the connection (or nil) in
// l.conn, and an error wrapping ErrLost when the identity is lost.
func (l *Lease) loop(ctx context.Context, conn *pgx.Conn) error {
	ticker := time.NewTicker(l.cfg.PingInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			l.conn = conn
			return nil
		case <-ticker.C:
		}
		if conn != nil {
			// Not ctx: Close must not cut a statement and so the session.
			err := l.heartbeat(context.WithoutCancel(ctx), conn)
			if err == nil {
				continue
			}
			if !conn.IsClosed() {
				// The session, and so the lock, is still ours.
				l.logger.WarnContext(ctx, "lease: heartbeat failed", slog.String("worker_id", l.id), slog.String("error", err.Error()))
				continue
			}
			l.logger.WarnContext(ctx, "lease: lock connection lost; re-taking the lock",
				slog.String("worker_id", l.id), slog.String("error", err.Error()))
			conn = nil
		}
		var err error
		conn, err = l.retake(ctx)
		if err != nil {
			return err
		}
		if conn == nil {
			return nil
		}
		ticker.Reset(l.cfg.PingInterval)
	}
}

// retake reconnects with backoff and re-takes the lock of l.id. It returns
// (nil, nil) when ctx is done and an error wrapping ErrLost when another
// session holds the lock or LostAfter has passed.
func (l *Lease) retake(ctx context.Context) (*pgx.Conn, error) {
	start := time.Now()
	backoff := retakeBackoffMin
	for attempt := 1; ; attempt++ {
		if l.cfg.hooks != nil && l.cfg.hooks.beforeRetake != nil {
			l.cfg.hooks.beforeRetake(ctx)
		}
		conn, _, err := l.connectAndLock(ctx, []string{l.id})
		if err == nil {
			var ours bool
			ours, err = l.rowIsOurs(ctx, conn)
			switch {
			case err != nil:
				closeConn(conn)
			case !ours:
				// Someone held the id while we were away, and may have handed
				// our running jobs back.
				closeConn(conn)
				return nil, fmt.Errorf("%w: %q was held by another process while the lock connection was down", ErrLost, l.id)
			default:
				if err := l.heartbeat(context.WithoutCancel(ctx), conn); err != nil {
					// The lock is ours; the next heartbeat writes the row.
					l.logger.WarnContext(ctx, "lease: heartbeat failed", slog.String("worker_id", l.id), slog.String("error", err.Error()))
				}
				l.logger.InfoContext(ctx, "lease: lock re-taken", slog.String("worker_id", l.id), slog.Int("retake_attempt", attempt))
				return conn, nil
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil, nil
		case errors.Is(err, errLockHeld):
			return nil, fmt.Errorf("%w: %q was taken by another process while the lock connection was down", ErrLost, l.id)
		case time.Since(start) >= l.cfg.LostAfter:
			return nil, fmt.Errorf("%w: could not re-take %q within %s: %w", ErrLost, l.id, l.cfg.LostAfter, err)
		}
		l.logger.WarnContext(ctx, "lease: re-taking the lock failed",
			slog.String("worker_id", l.id), slog.Int("retake_attempt", attempt),
			slog.Duration("retry_in", backoff), slog.String("error", err.Error()))
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, nil
		case <-timer.C:
		}
		backoff = min(2*backoff, retakeBackoffMax, max(l.cfg.PingInterval, retakeBackoffMin))
	}
}

// closeConn closes a connection, waiting briefly for the server to be told.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx) //nolint:errcheck // closing; the lock goes with the session
}
