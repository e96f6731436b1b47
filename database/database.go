// Package database opens Herald's PostgreSQL connection pool.
package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// DB is what every package that reads or writes Herald's tables takes: a
// pool, a connection or a transaction. It is Herald's one database
// interface; a function that must run inside a transaction (because it
// writes side records with the change, see audit.Record) takes a pgx.Tx.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Pool is a DB that can begin transactions: what a domain service that owns
// its transactions holds (a *pgxpool.Pool).
type Pool interface {
	DB
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Open connects to url and checks that the server answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: parse HERALD_DATABASE_URL: %w", err)
	}
	// River's workers (opt-in, imports, fan-out and one queue per provider)
	// each hold a connection while they work; too small a pool makes jobs
	// wait past their timeout. A pool_max_conns in the URL wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 48
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: ping %s: %w", cfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// EnsureDatabase creates the database named in url if it does not exist, by
// connecting to the server's postgres database with the same credentials.
func EnsureDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("database: parse url: %w", err)
	}
	// The pool's settings (pool_max_conns, ...) are for pgxpool; sent to
	// the server as settings they would be refused.
	for k := range cfg.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			delete(cfg.RuntimeParams, k)
		}
	}
	name := cfg.Database
	if name == "" || name == "postgres" {
		return nil
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database: connect to %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("database: look for %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("database: create %s: %w", name, err)
	}
	return nil
}

// NewInserter returns an insert-only River client on pool: no queues, no
// workers. Services insert their jobs with it, in the transactions of their
// changes, and the process's working client (made after the services,
// since it needs their workers) works them.
func NewInserter(pool *pgxpool.Pool, logger *slog.Logger) (*river.Client[pgx.Tx], error) {
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("database: river inserter: %w", err)
	}
	return c, nil
}
