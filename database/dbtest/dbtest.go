// Package dbtest gives each test package its own PostgreSQL schema, migrated
// once, so that packages run in parallel against the real database and leave
// nothing behind. Tests that need no River worker can use Tx for a
// transaction that is rolled back at the end of the test.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/migrations"
)

// DefaultURL is used when HERALD_TEST_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/herald_test?sslmode=disable"

var (
	once    sync.Once
	pool    *pgxpool.Pool
	schema  string
	initErr error
)

// URL is the test database URL.
func URL() string {
	if u := os.Getenv("HERALD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Main runs a package's tests and drops its schema afterwards. Call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if pool != nil {
		// A schema left behind is dropped by a later run after a day, so
		// the tests' result stands; say so rather than leave it silently.
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: drop schema %s: %v\n", schema, err)
		}
		pool.Close()
	}
	os.Exit(code)
}

// Pool returns the package's pool, whose search_path is its own schema.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	once.Do(func() { initErr = create() })
	if initErr != nil {
		t.Fatalf("dbtest: %v", initErr)
	}
	return pool
}

// Schema is the package's schema name.
func Schema(t testing.TB) string {
	Pool(t)
	return schema
}

// Tx begins a transaction that is rolled back when the test ends.
func Tx(t testing.TB) pgx.Tx {
	t.Helper()
	tx, err := Pool(t).Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

// FailingPool returns a second pool on the package's schema in which every
// statement whose SQL contains match fails before it is sent, with an error
// that wraps context.Canceled: pgx runs it with a context that has already
// ended. Other statements run normally, so a test can fail one database call
// of many and check that the code under test returns that error instead of
// hiding it.
func FailingPool(t testing.TB, match string) *pgxpool.Pool {
	t.Helper()
	cfg := Pool(t).Config()
	cfg.MaxConns = 4
	cfg.ConnConfig.Tracer = failingTracer{match: match}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dbtest: failing pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

type failingTracer struct{ match string }

func (f failingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(data.SQL, f.match) {
		return ctx
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	return ended
}

func (failingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func create() error {
	ctx := context.Background()
	if err := database.EnsureDatabase(ctx, URL()); err != nil {
		return fmt.Errorf("%w (run `make test`, which starts PostgreSQL)", err)
	}
	admin, err := pgx.Connect(ctx, URL())
	if err != nil {
		return fmt.Errorf("connect to %s (run `make test`, which starts PostgreSQL): %w", URL(), err)
	}
	defer admin.Close(ctx)
	// Schemas left by killed runs are dropped after a day.
	rows, err := admin.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'herald\_t\_%'`)
	if err != nil {
		return fmt.Errorf("list old schemas: %w", err)
	}
	old, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list old schemas: %w", err)
	}
	for _, name := range old {
		parts := strings.Split(name, "_")
		if len(parts) < 3 {
			continue
		}
		if ts, err := strconv.ParseInt(parts[2], 10, 64); err == nil && time.Since(time.Unix(ts, 0)) > 24*time.Hour {
			// Another package's run may be dropping it too; a leftover
			// costs nothing but space, so this run goes on.
			if _, err := admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
				fmt.Fprintf(os.Stderr, "dbtest: drop old schema %s: %v\n", name, err)
			}
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	schema = fmt.Sprintf("herald_t_%d_%s", time.Now().Unix(), hex.EncodeToString(b))
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(URL())
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 20
	pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	return migrations.Up(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Inserter is an insert-only River client on pool, for the services a test
// builds (see database.NewInserter).
func Inserter(pool *pgxpool.Pool) *river.Client[pgx.Tx] {
	c, err := database.NewInserter(pool, nil)
	if err != nil {
		panic(err)
	}
	return c
}
