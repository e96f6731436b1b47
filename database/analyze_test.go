package database_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/database/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestAnalyzeChanged loads rows a statement at a time, as sign-ups do, on a
// server where nothing else analyses them: AnalyzeChanged finds the table,
// analyses it, and then finds nothing more to do.
func TestAnalyzeChanged(t *testing.T) {
	pool := dbtest.Pool(t)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := pool.Exec(ctx, `INSERT INTO subscribers (external_id) SELECT 'analyze-' || i FROM generate_series(1, 5000) i`); err != nil {
		t.Fatal(err)
	}
	// The statistics collector reports asynchronously; flush this backend's.
	if _, err := pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		t.Fatal(err)
	}
	var tables []string
	for range 50 {
		got, err := database.AnalyzeChanged(ctx, pool, logger)
		if err != nil {
			t.Fatal(err)
		}
		if tables = got; slices.Contains(tables, "subscribers") {
			break
		}
		// Another pool connection may hold the unflushed counts.
		if _, err := pool.Exec(ctx, `SELECT pg_stat_force_next_flush(), pg_sleep(0.05)`); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(tables, "subscribers") {
		t.Fatalf("analysed %v, want subscribers", tables)
	}
	var analysed bool
	if err := pool.QueryRow(ctx, `SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND relname = 'subscribers'`).Scan(&analysed); err != nil {
		t.Fatal(err)
	}
	if !analysed {
		t.Fatal("subscribers has no last_analyze")
	}
	again, err := database.AnalyzeChanged(ctx, pool, logger)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(again, "subscribers") {
		t.Fatalf("analysed subscribers again: %v", again)
	}
}
