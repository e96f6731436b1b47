package subscribers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// QueueImports is the River queue import jobs run on, apart from message
// traffic so a large import never delays a confirmation.
const QueueImports = "imports"

// ImportColumns are the CSV columns Herald understands, in any order. lists is
// a ;-separated list of list slugs the row is a confirmed member of, and
// consent_source says where that consent was given (required with lists).
var ImportColumns = []string{"external_id", "email", "locale", "timezone", "attributes", "lists", "consent_source"}

// maxRowErrors bounds how many row errors an import keeps; all are counted.
const maxRowErrors = 1000

// chunkSize is how much of an upload one import_chunks row holds.
const chunkSize = 1 << 20

// ErrImportTooLarge is returned when an upload exceeds the configured size.
var ErrImportTooLarge = errors.New("subscribers: import file too large")

// Import is the state and result of one CSV import.
type Import struct {
	ID           int64      `json:"id"`
	Status       string     `json:"status"`
	Filename     string     `json:"filename"`
	SizeBytes    int64      `json:"size_bytes"`
	RowsRead     int64      `json:"rows_read"`
	RowsImported int64      `json:"rows_imported"`
	RowsFailed   int64      `json:"rows_failed"`
	RowErrors    []RowError `json:"row_errors"`
	Error        *string    `json:"error"`
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
}

// RowError says why a CSV row was not imported.
type RowError struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// ImportArgs is the River job that merges an uploaded CSV.
type ImportArgs struct {
	ImportID int64 `json:"import_id"`
}

// Kind implements river.JobArgs.
func (ImportArgs) Kind() string { return "subscribers.import" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ImportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueImports, MaxAttempts: 3}
}

// CreateImport checks the CSV header and stores the upload, in tx, for an
// import job that the caller inserts in the same transaction.
func CreateImport(ctx context.Context, tx pgx.Tx, filename string, body io.Reader, maxBytes int64) (*Import, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	if _, err := parseHeader(br); err != nil {
		return nil, err
	}
	var imp Import
	if err := tx.QueryRow(ctx, `INSERT INTO imports (filename) VALUES ($1) RETURNING id, status, filename, created_at`,
		invalid.Truncate(filename, 255)).Scan(&imp.ID, &imp.Status, &imp.Filename, &imp.CreatedAt); err != nil {
		return nil, fmt.Errorf("subscribers: create import: %w", err)
	}
	buf := make([]byte, chunkSize)
	var size int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(br, buf)
		if n > 0 {
			size += int64(n)
			if size > maxBytes {
				return nil, ErrImportTooLarge
			}
			if _, err := tx.Exec(ctx, `INSERT INTO import_chunks (import_id, seq, data) VALUES ($1, $2, $3)`,
				imp.ID, seq, buf[:n]); err != nil {
				return nil, fmt.Errorf("subscribers: store import: %w", err)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("subscribers: read upload: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE imports SET size_bytes = $2 WHERE id = $1`, imp.ID, size); err != nil {
		return nil, fmt.Errorf("subscribers: create import: %w", err)
	}
	imp.SizeBytes = size
	return &imp, nil
}

// parseHeader reads the header line from the peeked start of the upload.
func parseHeader(br *bufio.Reader) (map[string]int, error) {
	head, err := br.Peek(br.Size())
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("subscribers: read upload: %w", err)
	}
	if len(head) == 0 {
		return nil, invalid.Field("file", "is empty; the first line must be a header such as external_id,email,lists,consent_source")
	}
	line, _, found := bytes.Cut(head, []byte("\n"))
	if !found && len(head) == br.Size() {
		return nil, invalid.Field("file", "has no header line within the first 64 KiB")
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))))
	names, err := r.Read()
	if err != nil {
		return nil, invalid.Fieldf("file", "line 1: the header is not valid CSV: %v", err)
	}
	return headerIndex(names)
}

func headerIndex(names []string) (map[string]int, error) {
	idx := map[string]int{}
	for i, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		known := false
		for _, c := range ImportColumns {
			known = known || c == n
		}
		if !known {
			return nil, invalid.Fieldf("file", "line 1: unknown column %q; known columns are %s", n, strings.Join(ImportColumns, ", "))
		}
		if _, dup := idx[n]; dup {
			return nil, invalid.Fieldf("file", "line 1: column %q appears twice", n)
		}
		idx[n] = i
	}
	_, hasID := idx["external_id"]
	_, hasEmail := idx["email"]
	if !hasID && !hasEmail {
		return nil, invalid.Field("file", "line 1: the header needs an external_id or an email column")
	}
	if _, hasLists := idx["lists"]; hasLists {
		if _, ok := idx["consent_source"]; !ok {
			return nil, invalid.Field("file", "line 1: a lists column needs a consent_source column (where consent was given)")
		}
	}
	return idx, nil
}

// GetImport returns an import's progress and result.
func GetImport(ctx context.Context, db database.DB, id int64) (*Import, error) {
	var imp Import
	err := db.QueryRow(ctx, `SELECT id, status, filename, size_bytes, rows_read, rows_imported, rows_failed, row_errors,
			error, created_at, started_at, finished_at FROM imports WHERE id = $1`, id).
		Scan(&imp.ID, &imp.Status, &imp.Filename, &imp.SizeBytes, &imp.RowsRead, &imp.RowsImported, &imp.RowsFailed,
			&imp.RowErrors, &imp.Error, &imp.CreatedAt, &imp.StartedAt, &imp.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("subscribers: get import %d: %w", id, err)
	}
	return &imp, nil
}

// ImportWorker runs imports.
type ImportWorker struct {
	river.WorkerDefaults[ImportArgs]
	Pool   *pgxpool.Pool
	Logger *slog.Logger
}

// Timeout implements river.Worker: a million rows take seconds, not minutes,
// but a slow disk should not kill an import half-way.
func (w *ImportWorker) Timeout(*river.Job[ImportArgs]) time.Duration { return 30 * time.Minute }

// Work implements river.Worker.
func (w *ImportWorker) Work(ctx context.Context, job *river.Job[ImportArgs]) error {
	res, err := runImport(ctx, w.Pool, w.Logger, job.Args.ImportID)
	if err != nil {
		status := "queued"
		if job.Attempt >= job.MaxAttempts {
			status = "failed"
		}
		// A finished import stays finished whatever went wrong after it.
		if _, uerr := w.Pool.Exec(context.WithoutCancel(ctx), `UPDATE imports SET status = $2, error = $3
			WHERE id = $1 AND status <> 'finished'`, job.Args.ImportID, status, err.Error()); uerr != nil {
			// The job's error below is what River retries on; the import
			// only shows a stale status until the next attempt records its own.
			w.Logger.Error("import failure not recorded on the import", "import_id", job.Args.ImportID,
				"import_error", err, "error", uerr)
		}
		return err
	}
	w.Logger.Info("import finished", "import_id", res.ID, "rows_imported", res.RowsImported, "rows_failed", res.RowsFailed)
	return nil
}

// RunImport parses, validates and merges an import in one transaction: a
// crash or error leaves nothing half-written, and the job is retried. It
// logs what it can carry on without to slog's default logger; ImportWorker
// logs to its own.
func RunImport(ctx context.Context, pool *pgxpool.Pool, importID int64) (*Import, error) {
	return runImport(ctx, pool, slog.Default(), importID)
}

func runImport(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, importID int64) (*Import, error) {
	if _, err := pool.Exec(ctx, `UPDATE imports SET status = 'running', started_at = now(), rows_read = 0
		WHERE id = $1 AND status IN ('queued', 'running')`, importID); err != nil {
		return nil, fmt.Errorf("subscribers: start import: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscribers: import: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	// A job rescued while its first run is still going waits here, then
	// finds the import finished.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('herald.import'), $1::int)`, importID); err != nil {
		return nil, fmt.Errorf("subscribers: lock import: %w", err)
	}
	var status string
	if err := tx.QueryRow(ctx, `SELECT status FROM imports WHERE id = $1`, importID).Scan(&status); err != nil {
		return nil, fmt.Errorf("subscribers: import %d: %w", importID, err)
	}
	if status == "finished" {
		return GetImport(ctx, pool, importID)
	}

	listIDs, err := listIDsBySlug(ctx, tx)
	if err != nil {
		return nil, err
	}
	p := &rowParser{lists: listIDs, progress: func(n int64) {
		// Progress is for people watching; the import itself does not
		// depend on it, and the finished import records the final count.
		if _, err := pool.Exec(ctx, `UPDATE imports SET rows_read = $2 WHERE id = $1`, importID, n); err != nil {
			logger.Warn("import progress not recorded", "import_id", importID, "rows_read", n, "error", err)
		}
	}}
	started := time.Now()
	src := &chunkReader{ctx: ctx, pool: pool, importID: importID}
	if err := p.start(src); err != nil {
		// The header was checked at upload, so this is a storage problem.
		return nil, err
	}
	copied, staged, merged, err := mergeShards(ctx, pool, logger, p, slices.Collect(maps.Values(listIDs)))
	if err != nil {
		return nil, err
	}
	rowErrors, err := json.Marshal(p.errors)
	if err != nil {
		return nil, fmt.Errorf("subscribers: encode row errors: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE imports SET status = 'finished', finished_at = now(), error = NULL,
		rows_read = $2, rows_imported = $3, rows_failed = $4, row_errors = $5 WHERE id = $1`,
		importID, p.read, copied, p.failed, rowErrors); err != nil {
		return nil, fmt.Errorf("subscribers: finish import: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM import_chunks WHERE import_id = $1`, importID); err != nil {
		return nil, fmt.Errorf("subscribers: finish import: %w", err)
	}
	if err := record(ctx, tx, audit.System("import worker"), "import.finish", "import", strconv.FormatInt(importID, 10),
		map[string]any{"rows_read": p.read, "rows_imported": copied, "rows_failed": p.failed}); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("subscribers: commit import: %w", err)
	}
	logger.Info("import finished", "import_id", importID, "rows_read", p.read, "rows_imported", copied, "rows_failed", p.failed,
		"stage_ms", staged.Sub(started).Milliseconds(), "merge_ms", merged.Sub(staged).Milliseconds(),
		"commit_ms", time.Since(merged).Milliseconds())
	// A large import changes the tables' sizes faster than autovacuum
	// notices; campaigns right after it should be planned for the new sizes.
	if copied > 10_000 {
		// The import is committed: failing the job now would mark a
		// finished import failed. Until autovacuum analyzes, campaigns are
		// only planned for the old sizes.
		if _, err := pool.Exec(ctx, `ANALYZE subscribers, memberships`); err != nil {
			logger.Warn("statistics not refreshed after import", "import_id", importID, "error", err)
		}
	}
	return GetImport(ctx, pool, importID)
}

// The merges insert or update subscribers, add confirmed memberships and
// write a consent record for each membership they created, each in one
// statement over the whole staging table. A membership that is unsubscribed
// stays unsubscribed: an import never overrides an opt-out. The newest row
// (highest line) wins when a file names a person twice.
//
// They write only what changes: people already present (old) are found by
// one join, updated (by id) only where the file says something new, and their
// memberships checked (pending ones are confirmed). People not present
// (new) take their ids from the sequence before they are inserted, so their
// memberships and consent records come straight from the file's rows: no
// join back to what was inserted, and no check of memberships that cannot
// exist yet. Importing a file a second time writes next to nothing. A row
// someone else inserts between the join and the insert (a sign-up at that
// very moment) fails the statement with a unique violation; the job's
// retry then finds it present.
const mergeByExternalID = `
WITH src AS (
	SELECT DISTINCT ON (external_id) * FROM import_staging WHERE external_id IS NOT NULL
	ORDER BY external_id, line_no DESC
), old AS (
	SELECT s.id, src.* FROM subscribers s JOIN src USING (external_id)
), new AS (
	SELECT nextval('subscribers_id_seq') AS id, src.* FROM src
	WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.external_id = src.external_id)
), ins AS (
	INSERT INTO subscribers (id, external_id, email, locale, timezone, attributes) OVERRIDING SYSTEM VALUE
	SELECT id, external_id, email, coalesce(locale, ''), coalesce(timezone, ''), coalesce(attributes, '{}') FROM new
), upd AS (
	UPDATE subscribers s SET
		email = coalesce(o.email, s.email),
		locale = CASE WHEN coalesce(o.locale, '') <> '' THEN o.locale ELSE s.locale END,
		timezone = CASE WHEN coalesce(o.timezone, '') <> '' THEN o.timezone ELSE s.timezone END,
		attributes = s.attributes || coalesce(o.attributes, '{}'),
		updated_at = now()
	FROM old o
	WHERE s.id = o.id
	  AND (o.email IS NOT NULL AND o.email IS DISTINCT FROM s.email
	    OR coalesce(o.locale, '') NOT IN ('', s.locale)
	    OR coalesce(o.timezone, '') NOT IN ('', s.timezone)
	    OR NOT s.attributes @> coalesce(o.attributes, '{}'))
), want_new AS (
	SELECT l.id AS list_id, new.id AS subscriber_id, new.consent_source FROM new CROSS JOIN unnest(new.lists) AS l(id)
), want_old AS (
	SELECT l.id AS list_id, old.id AS subscriber_id, old.consent_source FROM old CROSS JOIN unnest(old.lists) AS l(id)
)` + mergeMemberships

const mergeByEmail = `
WITH src AS (
	SELECT DISTINCT ON (lower(email)) *, lower(email) AS em FROM import_staging WHERE external_id IS NULL
	ORDER BY lower(email), line_no DESC
), matched AS (
	SELECT src.*, (SELECT s.id FROM subscribers s WHERE lower(s.email) = src.em AND s.state <> 'erased'
		ORDER BY s.id LIMIT 1) AS existing
	FROM src
), new AS (
	SELECT nextval('subscribers_id_seq') AS id, m.* FROM matched m WHERE existing IS NULL
), ins AS (
	INSERT INTO subscribers (id, email, locale, timezone, attributes) OVERRIDING SYSTEM VALUE
	SELECT id, email, coalesce(locale, ''), coalesce(timezone, ''), coalesce(attributes, '{}') FROM new
), upd AS (
	UPDATE subscribers s SET
		locale = CASE WHEN coalesce(m.locale, '') <> '' THEN m.locale ELSE s.locale END,
		timezone = CASE WHEN coalesce(m.timezone, '') <> '' THEN m.timezone ELSE s.timezone END,
		attributes = s.attributes || coalesce(m.attributes, '{}'), updated_at = now()
	FROM matched m WHERE s.id = m.existing
	  AND (coalesce(m.locale, '') NOT IN ('', s.locale)
	    OR coalesce(m.timezone, '') NOT IN ('', s.timezone)
	    OR NOT s.attributes @> coalesce(m.attributes, '{}'))
), want_new AS (
	SELECT l.id AS list_id, new.id AS subscriber_id, new.consent_source FROM new CROSS JOIN unnest(new.lists) AS l(id)
), want_old AS (
	SELECT l.id AS list_id, m.existing AS subscriber_id, m.consent_source
	FROM matched m CROSS JOIN unnest(m.lists) AS l(id) WHERE m.existing IS NOT NULL
)` + mergeMemberships

// mergeMemberships ends both merges. The memberships of new people
// (want_new: list, subscriber, consent source) are all inserted. Those of
// people already present (want_old) are inserted where they do not exist;
// pending ones are confirmed; confirmed and unsubscribed ones are left
// alone. Every membership created or confirmed gets its consent record.
// (A data-modifying CTE runs to completion whether or not it is read.)
const mergeMemberships = `, fresh_new AS (
	INSERT INTO memberships (list_id, subscriber_id, status, confirmed_at)
	SELECT list_id, subscriber_id, 'confirmed', now() FROM want_new
), fresh_old AS (
	INSERT INTO memberships (list_id, subscriber_id, status, confirmed_at)
	SELECT w.list_id, w.subscriber_id, 'confirmed', now() FROM want_old w
	WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.list_id = w.list_id AND m.subscriber_id = w.subscriber_id)
	RETURNING list_id, subscriber_id
), confirmed AS (
	UPDATE memberships m SET status = 'confirmed', confirmed_at = now(), updated_at = now()
	FROM want_old w WHERE m.list_id = w.list_id AND m.subscriber_id = w.subscriber_id AND m.status = 'pending'
	RETURNING m.list_id, m.subscriber_id
), consented AS (
	SELECT list_id, subscriber_id, consent_source FROM want_new
	UNION ALL
	SELECT w.list_id, w.subscriber_id, w.consent_source
	FROM (SELECT list_id, subscriber_id FROM fresh_old UNION ALL SELECT list_id, subscriber_id FROM confirmed) mem
	JOIN want_old w USING (list_id, subscriber_id)
)
INSERT INTO consent_records (subscriber_id, list_id, list_slug, action, source, detail, consent_version)
SELECT c.subscriber_id, c.list_id, l.slug, 'confirm', 'import', c.consent_source, l.consent_version
FROM consented c JOIN lists l ON l.id = c.list_id`

func listIDsBySlug(ctx context.Context, db database.DB) (map[string]int64, error) {
	rows, err := db.Query(ctx, `SELECT slug, id FROM lists`)
	if err != nil {
		return nil, fmt.Errorf("subscribers: import lists: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var slug string
		var id int64
		if err := rows.Scan(&slug, &id); err != nil {
			return nil, fmt.Errorf("subscribers: import lists: %w", err)
		}
		out[slug] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subscribers: import lists: %w", err)
	}
	return out, nil
}

// chunkReader streams an upload's chunks in order, one query per MiB.
type chunkReader struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	importID int64
	seq      int
	buf      []byte
	done     bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		err := c.pool.QueryRow(c.ctx, `SELECT data FROM import_chunks WHERE import_id = $1 AND seq = $2`,
			c.importID, c.seq).Scan(&c.buf)
		if errors.Is(err, pgx.ErrNoRows) {
			c.done = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("subscribers: read import chunk: %w", err)
		}
		c.seq++
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}
