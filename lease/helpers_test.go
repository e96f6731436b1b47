package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/herald-im/herald/database/dbtest"
)

// testBundle is what every subtest starts from: the package's pool, a
// hostname and a queue of its own, and an insert-only River client.
type testBundle struct {
	ctx    context.Context
	pool   *pgxpool.Pool
	logger *slog.Logger
	host   string
	queue  string
	river  *river.Client[pgx.Tx]
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	suffix := randomHex()
	return &testBundle{
		ctx:    context.Background(),
		pool:   pool,
		logger: testLogger(t),
		host:   "lt-" + suffix,
		queue:  "lease_" + suffix,
		river:  client,
	}
}

// acquire takes a lease that is closed when the test ends.
func (b *testBundle) acquire(t *testing.T, cfg Config) *Lease {
	t.Helper()
	l, err := b.tryAcquire(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (b *testBundle) tryAcquire(t *testing.T, cfg Config) (*Lease, error) {
	t.Helper()
	if cfg.ID == "" && cfg.Hostname == "" {
		cfg.Hostname = b.host
	}
	if cfg.Logger == nil {
		cfg.Logger = b.logger
	}
	l, err := Acquire(b.ctx, b.pool, cfg)
	if err == nil {
		t.Cleanup(func() { l.Close(context.Background()) })
	}
	return l, err
}

// holderPID is the backend pid holding the lock of worker id, if any.
func (b *testBundle) holderPID(t *testing.T, id string) (int32, bool) {
	t.Helper()
	var pid int32
	err := b.pool.QueryRow(b.ctx, `
		SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid = $1::int4::oid
			AND objid = hashtext(coalesce(current_schema(), '') || '/' || $2)::oid
			AND objsubid = 2`, LockClassID, id).Scan(&pid)
	if err == pgx.ErrNoRows {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return pid, true
}

// terminateHolder ends the backend holding id's lock, as a crash of its
// process or a cut connection would, and returns its pid.
func (b *testBundle) terminateHolder(t *testing.T, id string) int32 {
	t.Helper()
	pid, ok := b.holderPID(t, id)
	if !ok {
		t.Fatalf("nobody holds the lock of %q", id)
	}
	if _, err := b.pool.Exec(b.ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func (b *testBundle) waitLockFree(t *testing.T, id string) {
	t.Helper()
	waitFor(t, 10*time.Second, "the lock of "+id+" to be free", func() bool {
		_, held := b.holderPID(t, id)
		return !held
	})
}

// workerRow reads the herald_workers row of id.
func (b *testBundle) workerRow(t *testing.T, id string) (version string, heartbeat time.Time, ok bool) {
	t.Helper()
	err := b.pool.QueryRow(b.ctx, `SELECT version, heartbeat_at FROM herald_workers WHERE id = $1`, id).Scan(&version, &heartbeat)
	if err == pgx.ErrNoRows {
		return "", time.Time{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return version, heartbeat, true
}

// insertJob inserts an available job into the bundle's queue.
func (b *testBundle) insertJob(t *testing.T, maxAttempts int) int64 {
	t.Helper()
	res, err := b.river.Insert(b.ctx, blockArgs{}, &river.InsertOpts{Queue: b.queue, MaxAttempts: maxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	return res.Job.ID
}

// setRunning leaves a job as a process that was running it and died would:
// state running, attempt, attempted_by, attempted_at ago.
func (b *testBundle) setRunning(t *testing.T, jobID int64, attempt int, attemptedBy []string, ago time.Duration) {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, `
		UPDATE river_job SET state = 'running', attempt = $2, attempted_by = $3,
			attempted_at = now() - $4::bigint * interval '1 microsecond'
		WHERE id = $1`, jobID, attempt, attemptedBy, ago.Microseconds())
	if err != nil {
		t.Fatal(err)
	}
}

func (b *testBundle) job(t *testing.T, id int64) *rivertype.JobRow {
	t.Helper()
	job, err := b.river.JobGet(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-ticker.C
	}
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
		panic("unreachable")
	}
}

type blockArgs struct {
	N int `json:"n"`
}

func (blockArgs) Kind() string { return "lease_test_block" }

// funcWorker works blockArgs jobs with fn.
type funcWorker struct {
	river.WorkerDefaults[blockArgs]
	fn func(ctx context.Context, job *river.Job[blockArgs]) error
}

func (w *funcWorker) Work(ctx context.Context, job *river.Job[blockArgs]) error {
	return w.fn(ctx, job)
}

// riverConfig is a River client config that works queue with fn as the
// worker. Its rescuer leaves alone the hours-old running jobs that tests make.
func riverConfig(id, queue string, fn func(ctx context.Context, job *river.Job[blockArgs]) error) *river.Config {
	workers := river.NewWorkers()
	river.AddWorker(workers, &funcWorker{fn: fn})
	return &river.Config{
		ID:                   id,
		Logger:               discardLogger(),
		Queues:               map[string]river.QueueConfig{queue: {MaxWorkers: 5}},
		Workers:              workers,
		FetchCooldown:        10 * time.Millisecond,
		FetchPollInterval:    50 * time.Millisecond,
		RescueStuckJobsAfter: 24 * time.Hour,
		TestOnly:             true,
	}
}

func randomHex() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLogger writes through t.Log, at debug level.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// syncBuffer is a bytes.Buffer that a child process writes to while the test
// may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
