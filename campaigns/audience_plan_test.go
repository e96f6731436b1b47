package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/migrations"
)

// freshSchema is a migrated schema of its own whose tables were loaded a
// row at a time and never analysed, as on a server without autovacuum.
func freshSchema(t *testing.T, devices int) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("herald_t_%d_%s", time.Now().Unix(), hex.EncodeToString(b))
	cfg, err := pgxpool.ParseConfig(dbtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
		pool.Close()
	})
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO apps (slug, name, vapid_public_key, secrets) VALUES ('default', 'Default', 'k', '\x00')`,
		`INSERT INTO lists (slug, name) VALUES ('news', 'News')`,
		fmt.Sprintf(`INSERT INTO subscribers (external_id, locale, timezone) SELECT 'p' || i, 'en', '' FROM generate_series(1, %d) i`, devices),
		`INSERT INTO devices (subscriber_id, app_id, platform, token) SELECT id, (SELECT id FROM apps), 'fcm', 'sim:' || id FROM subscribers`,
		`INSERT INTO memberships (list_id, subscriber_id, status, confirmed_at) SELECT (SELECT id FROM lists), id, 'confirmed', now() FROM subscribers`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return pool
}

// TestWholeAudienceQueriesDoNotNeedStatistics: on tables never analysed,
// the planner takes them for nearly empty and joins a 20,000-device
// audience with nested loops that rescan an index per row (a preview took
// 12 s that way on this kind of machine). Herald's whole-audience queries
// are planned with hash joins whatever the statistics say.
func TestWholeAudienceQueriesDoNotNeedStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := freshSchema(t, 20_000)
	s := NewService(pool, nil, nil, nil, Config{PublicURL: "http://herald.test", Secret: []byte("0123456789abcdef0123456789abcdef")}, nil)
	var appID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM apps`).Scan(&appID); err != nil {
		t.Fatal(err)
	}
	explain := func(tx pgx.Tx) string {
		q, err := s.audience(ctx, tx, appID, &Audience{Lists: []string{"news"}})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, `EXPLAIN SELECT count(DISTINCT d.subscriber_id) `+q.from, q.params()...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	// Without the setting, the planner does pick the nested loops.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if plan := explain(tx); !strings.Contains(plan, "Nested Loop") {
			t.Logf("this server plans the unanalysed audience without nested loops anyway:\n%s", plan)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.wholeAudience(ctx, func(tx pgx.Tx) error {
		if plan := explain(tx); strings.Contains(plan, "Nested Loop") {
			t.Fatalf("whole-audience plan with nested loops:\n%s", plan)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
