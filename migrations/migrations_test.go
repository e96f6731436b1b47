package migrations_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/migrations"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestUpIsIdempotentAndCurrent(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t) // already migrated once
	ctx := context.Background()
	if err := migrations.Up(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if err := migrations.Check(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job").Scan(&n); err != nil {
		t.Fatalf("river tables missing: %v", err)
	}
}

func TestConsentRecordsAreAppendOnly(t *testing.T) {
	t.Parallel()
	tx := dbtest.Tx(t)
	ctx := context.Background()
	var sub, rec int64
	if err := tx.QueryRow(ctx, "INSERT INTO subscribers DEFAULT VALUES RETURNING id").Scan(&sub); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO consent_records (subscriber_id, action, source, ip, user_agent)
		VALUES ($1, 'confirm', 'web', '192.0.2.7', 'Firefox') RETURNING id`, sub).Scan(&rec); err != nil {
		t.Fatal(err)
	}
	// Anonymising (truncate the address, drop the user agent) is allowed...
	if _, err := tx.Exec(ctx, "UPDATE consent_records SET ip = '192.0.2.0/24', user_agent = NULL WHERE id = $1", rec); err != nil {
		t.Fatalf("anonymise: %v", err)
	}
	// ...rewriting history is not.
	for _, stmt := range []string{
		"UPDATE consent_records SET action = 'unsubscribe' WHERE id = $1",
		"UPDATE consent_records SET ip = '203.0.113.1' WHERE id = $1",
		"DELETE FROM consent_records WHERE id = $1",
	} {
		if _, err := tx.Exec(ctx, "SAVEPOINT s"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, stmt, rec); err == nil {
			t.Errorf("%s: allowed", stmt)
		}
		tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s")
	}
}
