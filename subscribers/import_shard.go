package subscribers

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ImportShards is how many connections an import merges on at once. Rows
// with an external_id are split by it, so every row about one person lands
// in one shard and "the newest row wins" holds as it did in one statement;
// the shards' merges touch disjoint subscribers and run side by side on
// PostgreSQL's cores. Rows with only an email are merged after them.
const ImportShards = 2

// shardBatch is how many parsed rows travel to a shard's COPY at once.
const shardBatch = 1024

// importShard is one connection's part of an import: its transaction, its
// staging table and the rows on their way to it.
type importShard struct {
	conn   *pgxpool.Conn
	tx     pgx.Tx
	rows   chan [][]any
	copied int64
}

// openShard begins a shard's transaction: the lists the file may name are
// locked as a foreign key would lock them (see migration 010), so none is
// deleted before the import commits.
func openShard(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, listIDs []int64) (*importShard, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscribers: import connection: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("subscribers: import: %w", err)
	}
	sh := &importShard{conn: conn, tx: tx, rows: make(chan [][]any, 4)}
	for _, q := range []string{
		// Room for the merge's joins to hash in memory instead of
		// sorting on disk.
		`SET LOCAL work_mem = '256MB'`,
		// Compiling the merge's plan took 0.6 s of a 500k-row shard's
		// merge and won nothing back: each expression runs once a row.
		`SET LOCAL jit = off`,
		`CREATE TEMP TABLE import_staging (
			line_no integer, external_id text, email text, locale text, timezone text, attributes jsonb,
			lists bigint[], consent_source text) ON COMMIT DROP`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			sh.close(ctx, logger)
			return nil, fmt.Errorf("subscribers: import staging: %w", err)
		}
	}
	var locked int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM lists WHERE id = ANY($1) FOR KEY SHARE) l`,
		listIDs).Scan(&locked); err != nil {
		sh.close(ctx, logger)
		return nil, fmt.Errorf("subscribers: import lock lists: %w", err)
	}
	if locked != len(listIDs) {
		// A list was deleted after the file's slugs were looked up: its
		// rows must not become memberships of a list that is gone. The
		// job's retry looks the slugs up again.
		sh.close(ctx, logger)
		return nil, fmt.Errorf("subscribers: import: %d of %d lists were deleted while the import started", len(listIDs)-locked, len(listIDs))
	}
	return sh, nil
}

// stage copies the rows sent to the shard into its staging table until the
// channel closes.
func (sh *importShard) stage(ctx context.Context) error {
	n, err := sh.tx.CopyFrom(ctx, pgx.Identifier{"import_staging"},
		[]string{"line_no", "external_id", "email", "locale", "timezone", "attributes", "lists", "consent_source"},
		&chanSource{ctx: ctx, in: sh.rows})
	if err != nil {
		return fmt.Errorf("subscribers: import copy: %w", err)
	}
	sh.copied = n
	if _, err := sh.tx.Exec(ctx, `ANALYZE import_staging`); err != nil {
		return fmt.Errorf("subscribers: import analyze: %w", err)
	}
	return nil
}

// merge writes the shard's staged rows of one kind (mergeByExternalID or
// mergeByEmail) into subscribers, memberships and consent records.
func (sh *importShard) merge(ctx context.Context, q string) error {
	if _, err := sh.tx.Exec(ctx, q); err != nil {
		return fmt.Errorf("subscribers: import merge: %w", err)
	}
	return nil
}

// close rolls back what was not committed and gives the connection back.
// After a commit there is nothing to roll back; a rollback that fails after
// a failure is logged, beside the error that ended the import.
func (sh *importShard) close(ctx context.Context, logger *slog.Logger) {
	if err := sh.tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		logger.Warn("import shard not rolled back; its connection is closed instead", "error", err)
		sh.conn.Hijack().Close(context.WithoutCancel(ctx))
		return
	}
	sh.conn.Release()
}

// shardOf picks the shard of a parsed row. Rows with an external_id are
// spread by it: each shard's people are its own. Rows with only an email
// all go to shard 0, which merges them last (see mergeShards): an email may
// name someone another shard is writing.
func shardOf(seed maphash.Seed, row []any, n int) int {
	ext, _ := row[1].(*string)
	if ext == nil {
		return 0
	}
	return int(maphash.String(seed, *ext) % uint64(n))
}

// chanSource is a pgx.CopyFromSource over batches of rows from a channel.
type chanSource struct {
	ctx   context.Context
	in    <-chan [][]any
	batch [][]any
	i     int
	err   error
}

func (c *chanSource) Next() bool {
	for c.i+1 >= len(c.batch) {
		select {
		case b, ok := <-c.in:
			if !ok {
				return false
			}
			c.batch, c.i = b, -1
		case <-c.ctx.Done():
			c.err = c.ctx.Err()
			return false
		}
	}
	c.i++
	return true
}

func (c *chanSource) Values() ([]any, error) { return c.batch[c.i], nil }

func (c *chanSource) Err() error { return c.err }

// mergeShards parses the file into ImportShards staging tables at once,
// merges each on its own connection, and commits them once every shard has
// merged. It returns how many rows were staged, and when staging and
// merging ended. A failure before the commits leaves nothing behind; one
// between them leaves shards whose rows a retry merges again as rows that
// are present (an import is idempotent: memberships are not duplicated, and
// consent is recorded only for memberships it creates).
func mergeShards(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, p *rowParser, listIDs []int64) (copied int64, staged, merged time.Time, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	shards := make([]*importShard, 0, ImportShards)
	defer func() {
		for _, sh := range shards {
			sh.close(ctx, logger)
		}
	}()
	for range ImportShards {
		sh, err := openShard(ctx, pool, logger, listIDs)
		if err != nil {
			return 0, staged, merged, err
		}
		shards = append(shards, sh)
	}

	var wg sync.WaitGroup
	errs := make([]error, len(shards)+1)
	for i, sh := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = sh.stage(ctx); errs[i] != nil {
				cancel() // the parser stops feeding the others
			}
		}()
	}
	// The parser feeds the shards from this goroutine.
	errs[len(shards)] = func() error {
		defer func() {
			for _, sh := range shards {
				close(sh.rows)
			}
		}()
		seed := maphash.MakeSeed()
		pending := make([][][]any, len(shards))
		send := func(i int) error {
			select {
			case shards[i].rows <- pending[i]:
				pending[i] = make([][]any, 0, shardBatch)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for {
			row, err := p.next()
			if err != nil {
				cancel()
				return err
			}
			if row == nil {
				break
			}
			i := shardOf(seed, row, len(shards))
			pending[i] = append(pending[i], row)
			if len(pending[i]) >= shardBatch {
				if err := send(i); err != nil {
					return err
				}
			}
		}
		for i := range pending {
			if len(pending[i]) > 0 {
				if err := send(i); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, staged, merged, err
	}
	staged = time.Now()

	// People named by external_id, each shard its own, side by side.
	for i, sh := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = sh.merge(ctx, mergeByExternalID); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, staged, merged, err
	}
	// Then the rows with only an email (all in shard 0), once the other
	// shards have committed: an email may match someone they wrote, and
	// waiting on a shard that waits for this one would never end.
	for _, sh := range shards[1:] {
		if err := sh.tx.Commit(ctx); err != nil {
			return 0, staged, merged, fmt.Errorf("subscribers: commit import shard: %w", err)
		}
	}
	if err := shards[0].merge(ctx, mergeByEmail); err != nil {
		return 0, staged, merged, err
	}
	if err := shards[0].tx.Commit(ctx); err != nil {
		return 0, staged, merged, fmt.Errorf("subscribers: commit import shard: %w", err)
	}
	for _, sh := range shards {
		copied += sh.copied
	}
	return copied, staged, time.Now(), nil
}
