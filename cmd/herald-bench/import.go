package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/migrations"
	"github.com/herald-im/herald/subscribers"
)

// benchImport imports n CSV rows through Herald (upload, staging COPY,
// validation, merge into subscribers, memberships and consent records) and
// compares it with a bare COPY of the same file into a plain table.
func benchImport(ctx context.Context, url string, n int) error {
	pool, err := freshDatabase(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	slug, name := "bench", "Bench"
	if _, err := subscribers.CreateList(ctx, pool, subscribers.ListParams{Slug: &slug, Name: &name}); err != nil {
		return err
	}
	// The import job logs each import's phases (staging, merge, commit);
	// HERALD_BENCH_VERBOSE=1 shows them.
	if os.Getenv("HERALD_BENCH_VERBOSE") != "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	} else {
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	csv := makeCSV(n)
	fmt.Printf("import benchmark: %d rows, %.1f MiB CSV\n", n, float64(len(csv))/(1<<20))

	// Baseline: the server parsing the same CSV into an unindexed table.
	if _, err := pool.Exec(ctx, `CREATE TABLE bare_copy (external_id text, email text, locale text, timezone text,
		attributes text, lists text, consent_source text)`); err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(csv),
		"COPY bare_copy FROM STDIN WITH (FORMAT csv, HEADER true)"); err != nil {
		return err
	}
	bare := time.Since(start)
	conn.Release()

	floor, err := storageFloor(ctx, pool, n)
	if err != nil {
		return err
	}

	start = time.Now()
	var imp *subscribers.Import
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		imp, err = subscribers.CreateImport(ctx, tx, "bench.csv", bytes.NewReader(csv), int64(len(csv))+1)
		return err
	}); err != nil {
		return err
	}
	upload := time.Since(start)
	res, err := subscribers.RunImport(ctx, pool, imp.ID)
	if err != nil {
		return err
	}
	total := time.Since(start)
	if res.RowsImported != int64(n) || res.RowsFailed != 0 {
		return fmt.Errorf("imported %d, failed %d (%v)", res.RowsImported, res.RowsFailed, res.RowErrors)
	}
	// The same file again: every row is there already.
	start = time.Now()
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		imp, err = subscribers.CreateImport(ctx, tx, "bench.csv", bytes.NewReader(csv), int64(len(csv))+1)
		return err
	}); err != nil {
		return err
	}
	if res, err = subscribers.RunImport(ctx, pool, imp.ID); err != nil {
		return err
	}
	again := time.Since(start)
	if res.RowsFailed != 0 {
		return fmt.Errorf("second import: failed %d (%v)", res.RowsFailed, res.RowErrors)
	}
	var members, consents int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM memberships), (SELECT count(*) FROM consent_records)`).Scan(&members, &consents); err != nil {
		return err
	}
	if members != int64(n) || consents != int64(n) {
		return fmt.Errorf("after importing the file twice: %d memberships and %d consent records, want %d each", members, consents, n)
	}
	bareRate, heraldRate := float64(n)/bare.Seconds(), float64(n)/total.Seconds()
	fmt.Printf("  %-44s %10s %14s\n", "", "time", "rows/s")
	fmt.Printf("  %-44s %10s %14.0f\n", "bare COPY of the file (baseline)", bare.Round(time.Millisecond), bareRate)
	fmt.Printf("  %-44s %10s %14.0f\n", "Herald import (upload + job), end to end", total.Round(time.Millisecond), heraldRate)
	fmt.Printf("  %-44s %10s\n", "  of which upload into import_chunks", upload.Round(time.Millisecond))
	fmt.Printf("  %-44s %10s %14.0f   (target: at least as fast as the first: %s)\n", "the same file again (every row present)",
		again.Round(time.Millisecond), float64(n)/again.Seconds(), verdict(again <= total))
	fmt.Printf("  %-44s %10s %14.0f\n", "storage floor: plain INSERTs of the same rows", floor.Round(time.Millisecond), float64(n)/floor.Seconds())
	fmt.Printf("  %-44s\n", "  (subscribers, memberships, consent records with their indexes and FKs; no parsing, no merge)")
	fmt.Printf("  Herald / storage floor: %.2f\n", floor.Seconds()/total.Seconds())
	fmt.Printf("  Herald / bare COPY: %.2f   (target: >= 100,000 rows/s end to end; %s)\n", heraldRate/bareRate, verdict(heraldRate >= 100_000))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func makeCSV(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 110)
	b.WriteString("external_id,email,locale,timezone,attributes,lists,consent_source\n")
	zones := []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo", ""}
	for i := range n {
		fmt.Fprintf(&b, "u%d,user%d@example.com,de-DE,%s,\"{\"\"plan\"\":\"\"p%d\"\"}\",bench,signup form\n", i, i, zones[i%4], i%3)
	}
	return b.Bytes()
}

func freshDatabase(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	name := cfg.Database
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return nil, err
	}
	if err := database.EnsureDatabase(ctx, url); err != nil {
		return nil, err
	}
	pool, err := database.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// storageFloor times what PostgreSQL needs just to write n rows into tables
// shaped like subscribers, memberships and consent_records, with the same
// indexes and foreign keys, from data already on the server: the least any
// import that keeps a consent record per membership can cost here.
func storageFloor(ctx context.Context, pool *pgxpool.Pool, n int) (time.Duration, error) {
	setup := []string{
		`CREATE TABLE floor_lists (id bigint PRIMARY KEY)`,
		`INSERT INTO floor_lists VALUES (1)`,
		`CREATE TABLE floor_subs (LIKE subscribers INCLUDING ALL)`,
		`CREATE TABLE floor_members (LIKE memberships INCLUDING ALL,
			FOREIGN KEY (list_id) REFERENCES floor_lists, FOREIGN KEY (subscriber_id) REFERENCES floor_subs)`,
		`CREATE TABLE floor_consent (LIKE consent_records INCLUDING ALL, FOREIGN KEY (subscriber_id) REFERENCES floor_subs)`,
		`CREATE UNLOGGED TABLE floor_src AS SELECT i, 'u' || i AS external_id, 'user' || i || '@example.com' AS email
			FROM generate_series(1, $1::int) i`,
	}
	for i, q := range setup {
		var err error
		if i == len(setup)-1 {
			_, err = pool.Exec(ctx, strings.Replace(q, "$1::int", fmt.Sprint(n), 1))
		} else {
			_, err = pool.Exec(ctx, q)
		}
		if err != nil {
			return 0, fmt.Errorf("storage floor setup: %w", err)
		}
	}
	start := time.Now()
	for _, q := range []string{
		`INSERT INTO floor_subs (external_id, email, locale, timezone, attributes)
			SELECT external_id, email, 'de-DE', 'Europe/Berlin', '{"plan":"p1"}' FROM floor_src`,
		`INSERT INTO floor_members (list_id, subscriber_id, status, confirmed_at) SELECT 1, id, 'confirmed', now() FROM floor_subs`,
		`INSERT INTO floor_consent (subscriber_id, list_id, list_slug, action, source, detail, consent_version)
			SELECT id, 1, 'bench', 'confirm', 'import', 'signup form', 1 FROM floor_subs`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("storage floor: %w", err)
		}
	}
	return time.Since(start), nil
}
