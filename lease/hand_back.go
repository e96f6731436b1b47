package lease

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// HandBackError is the error text of the rivertype.AttemptError appended to
// every job handed back.
const HandBackError = "Job handed back: the process that ran it (worker id %s) stopped"

// handBackSetSQL mirrors River's JobRescueMany for jobs whose process is known
// to be gone: an AttemptError {at, attempt, error, trace} is appended and
// river:rescue_count incremented; a job whose cancellation was requested is
// cancelled, a job with attempts left is made available at once (River's
// rescuer makes it retryable at its next retry time), and a job at
// max_attempts is discarded. $1 is the error text.
const handBackSetSQL = `
UPDATE river_job SET
    state = CASE
        WHEN river_job.metadata ? 'cancel_attempted_at' THEN 'cancelled'
        WHEN river_job.attempt < greatest(river_job.max_attempts, 0) THEN 'available'
        ELSE 'discarded'
    END::river_job_state,
    errors = array_append(river_job.errors, jsonb_build_object(
        'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'attempt', greatest(river_job.attempt, 0),
        'error', format($1::text, river_job.attempted_by[array_upper(river_job.attempted_by, 1)]),
        'trace', '')),
    finalized_at = CASE
        WHEN river_job.metadata ? 'cancel_attempted_at' THEN now()
        WHEN river_job.attempt < greatest(river_job.max_attempts, 0) THEN NULL
        ELSE now()
    END,
    scheduled_at = CASE
        WHEN river_job.metadata ? 'cancel_attempted_at' THEN river_job.scheduled_at
        WHEN river_job.attempt < greatest(river_job.max_attempts, 0) THEN now()
        ELSE river_job.scheduled_at
    END,
    metadata = river_job.metadata || jsonb_build_object('river:rescue_count', coalesce(
        CASE WHEN jsonb_typeof(river_job.metadata -> 'river:rescue_count') = 'number'
            THEN (river_job.metadata ->> 'river:rescue_count')::int END, 0) + 1)
`

const handBackReturningSQL = `
RETURNING river_job.id, river_job.kind, river_job.attempt, river_job.state::text,
    river_job.attempted_by[array_upper(river_job.attempted_by, 1)]`

// handBackSQL hands back the jobs matching where. They are locked in id
// order, so that two hand backs over the same jobs (a restarted process and
// a reconciler) cannot deadlock; a job changed meanwhile is re-checked
// against where once locked.
func handBackSQL(where string) string {
	return `
WITH orphan AS (
    SELECT id FROM river_job
    WHERE ` + where + `
    ORDER BY id
    FOR UPDATE
)` + handBackSetSQL + `
FROM orphan
WHERE river_job.id = orphan.id` + handBackReturningSQL
}

// handBackOwnSQL hands back the jobs left running by worker id $2 before the
// lease was taken at $3. The attempted_at cutoff keeps jobs the lease's own
// River client fetched out, should HandBack run after it started.
var handBackOwnSQL = handBackSQL(`river_job.state = 'running'
        AND river_job.attempted_by[array_upper(river_job.attempted_by, 1)] = $2::text
        AND river_job.attempted_at < $3::timestamptz`)

// handBackDeadSQL hands back the jobs left running by every worker id in
// herald_workers whose lock is not held and whose heartbeat is older than $2
// microseconds. Jobs attempted within that time are left alone: should the id
// be taken by a new process while this statement runs, the jobs its River
// client fetches are fresh (a job changed meanwhile is re-checked against
// these conditions, but the subquery keeps the statement's snapshot).
var handBackDeadSQL = handBackSQL(`river_job.state = 'running'
        AND river_job.attempted_at < now() - $2::bigint * interval '1 microsecond'
        AND river_job.attempted_by[array_upper(river_job.attempted_by, 1)] IN (
            SELECT w.id FROM herald_workers w
            WHERE w.heartbeat_at < now() - $2::bigint * interval '1 microsecond'
                AND NOT EXISTS (
                    SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'advisory'
                        AND l.granted
                        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND l.classid = $3::int4::oid
                        AND l.objid = (` + fmt.Sprintf(lockKeySQL, "w.id") + `)::oid
                        AND l.objsubid = 2))`)

// HandBack hands back the jobs this identity's previous process left in
// state 'running': it was the last to attempt them and, since the lease's
// lock was free, it is gone. Each is retried at once, or discarded at
// max_attempts, or cancelled when its cancellation was requested (see the
// package documentation). Call it after Acquire and before the River client
// starts; jobs attempted after the lease was taken are never touched. It
// returns the number of jobs handed back and logs each.
func (l *Lease) HandBack(ctx context.Context) (int, error) {
	n, err := handBack(ctx, l.pool, l.logger, handBackOwnSQL, HandBackError, l.id, l.startedAt)
	if err != nil {
		return n, fmt.Errorf("lease: hand back jobs of %q: %w", l.id, err)
	}
	return n, nil
}

// HandBackDead hands back, as HandBack does, the running jobs of every
// identity in herald_workers whose lock is not held and whose heartbeat_at is
// older than staleAfter, among their jobs attempted more than staleAfter ago.
// An identity whose lock is held is never touched, however old its heartbeat,
// and jobs last attempted by ids not in herald_workers are left to River's
// rescuer. A periodic reconciler calls it; staleAfter should be well above
// Config.LostAfter plus Config.PingInterval. A nil logger discards.
func HandBackDead(ctx context.Context, pool *pgxpool.Pool, staleAfter time.Duration, logger *slog.Logger) (int, error) {
	if staleAfter <= 0 {
		return 0, fmt.Errorf("lease: hand back dead: staleAfter %s must be positive", staleAfter)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n, err := handBack(ctx, pool, logger, handBackDeadSQL, HandBackError, staleAfter.Microseconds(), LockClassID)
	if err != nil {
		return n, fmt.Errorf("lease: hand back jobs of dead workers: %w", err)
	}
	return n, nil
}

func handBack(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, sql string, args ...any) (int, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	type handed struct {
		ID       int64
		Kind     string
		Attempt  int
		State    string
		WorkerID string
	}
	jobs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[handed])
	if err != nil {
		return 0, err
	}
	for _, j := range jobs {
		logger.InfoContext(ctx, "lease: job handed back",
			slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Int("attempt", j.Attempt),
			slog.String("state", j.State), slog.String("worker_id", j.WorkerID))
	}
	return len(jobs), nil
}
