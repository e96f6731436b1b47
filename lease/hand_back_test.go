package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/herald-im/herald/database/dbtest"
)

func TestHandBack(t *testing.T) {
	t.Parallel()

	// checkHandedBack asserts a job was retried as River's rescuer would,
	// available at once, with its attempt kept and one error appended.
	checkHandedBack := func(t *testing.T, job *rivertype.JobRow, attempt int, by string) {
		t.Helper()
		if job.State != rivertype.JobStateAvailable || job.Attempt != attempt || job.FinalizedAt != nil {
			t.Fatalf("job %d: state %s, attempt %d, finalized %v; want available, attempt %d", job.ID, job.State, job.Attempt, job.FinalizedAt, attempt)
		}
		if time.Until(job.ScheduledAt) > time.Second {
			t.Fatalf("job %d scheduled at %s, want now", job.ID, job.ScheduledAt)
		}
		checkAttemptError(t, job, attempt, by)
	}

	t.Run("ReturnsOrphanedJobs", func(t *testing.T) {
		t.Parallel()
		b := setup(t)

		// The first holder "crashes": its lock connection is terminated and,
		// with an hour between pings, it never notices.
		crashed := b.acquire(t, Config{PingInterval: time.Hour, Version: "crashed"})
		id := crashed.ID()
		other := "other-" + b.host

		retry1 := b.insertJob(t, 25)
		b.setRunning(t, retry1, 1, []string{id}, time.Minute)
		retry2 := b.insertJob(t, 25)
		b.setRunning(t, retry2, 2, []string{other, id}, time.Minute)
		atMax := b.insertJob(t, 3)
		b.setRunning(t, atMax, 3, []string{id, id, id}, time.Minute)
		cancelled := b.insertJob(t, 25)
		b.setRunning(t, cancelled, 1, []string{id}, time.Minute)
		if _, err := b.pool.Exec(b.ctx, `UPDATE river_job SET metadata = metadata || jsonb_build_object('cancel_attempted_at', now()) WHERE id = $1`, cancelled); err != nil {
			t.Fatal(err)
		}
		ofOther := b.insertJob(t, 25)
		b.setRunning(t, ofOther, 2, []string{id, other}, time.Minute)
		available := b.insertJob(t, 25)

		b.terminateHolder(t, id)
		b.waitLockFree(t, id)
		restarted := b.acquire(t, Config{Version: "restarted"})
		if restarted.ID() != id {
			t.Fatalf("restarted process got %q, want the crashed one's %q", restarted.ID(), id)
		}
		// A job its own River client fetched after Acquire is not an orphan.
		own := b.insertJob(t, 25)
		b.setRunning(t, own, 1, []string{id}, 0)

		n, err := restarted.HandBack(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 4 {
			t.Fatalf("HandBack = %d, want 4", n)
		}
		checkHandedBack(t, b.job(t, retry1), 1, id)
		checkHandedBack(t, b.job(t, retry2), 2, id)

		job := b.job(t, atMax)
		if job.State != rivertype.JobStateDiscarded || job.FinalizedAt == nil || job.Attempt != 3 {
			t.Fatalf("job at max attempts: state %s, attempt %d, finalized %v; want discarded", job.State, job.Attempt, job.FinalizedAt)
		}
		checkAttemptError(t, job, 3, id)
		job = b.job(t, cancelled)
		if job.State != rivertype.JobStateCancelled || job.FinalizedAt == nil {
			t.Fatalf("job whose cancellation was requested: state %s; want cancelled", job.State)
		}
		for _, jobID := range []int64{ofOther, own} {
			if job := b.job(t, jobID); job.State != rivertype.JobStateRunning || len(job.Errors) != 0 {
				t.Fatalf("job %d: state %s, %d errors; want running, untouched", jobID, job.State, len(job.Errors))
			}
		}
		if job := b.job(t, available); job.State != rivertype.JobStateAvailable || len(job.Errors) != 0 {
			t.Fatalf("available job: state %s, %d errors; want untouched", job.State, len(job.Errors))
		}

		if n, err := restarted.HandBack(b.ctx); err != nil || n != 0 {
			t.Fatalf("second HandBack = %d, %v; want 0", n, err)
		}
		// The crashed lease, closed at last, leaves the new holder's row alone.
		if err := crashed.Close(b.ctx); err != nil {
			t.Fatal(err)
		}
		if version, _, ok := b.workerRow(t, id); !ok || version != "restarted" {
			t.Fatalf("row of %q: version %q, exists %v; want the restarted holder's", id, version, ok)
		}
	})

	t.Run("ResumesAfterSIGKILL", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		jobIDs := []int64{b.insertJob(t, 25), b.insertJob(t, 25), b.insertJob(t, 25)}

		// A Herald process takes the host's id, fetches the jobs with River
		// and is killed while they run.
		var out syncBuffer
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(),
			envCrashHelper+"=1",
			envCrashSchema+"="+dbtest.Schema(t),
			envCrashHost+"="+b.host,
			envCrashQueue+"="+b.queue)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }() //nolint:errcheck
		t.Cleanup(func() {
			cmd.Process.Kill() //nolint:errcheck
			<-exited
		})
		deadline := time.Now().Add(60 * time.Second)
		for b.countRunning(t, jobIDs, b.host) < len(jobIDs) {
			select {
			case <-exited:
				t.Fatalf("crash helper exited early:\n%s", out.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("the crash helper did not start the jobs:\n%s", out.String())
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		receive(t, exited, 10*time.Second, "the crash helper to exit")
		killed := time.Now()

		// The restarted process gets the same id and resumes at once.
		b.waitLockFree(t, b.host)
		l := b.acquire(t, Config{})
		if l.ID() != b.host {
			t.Fatalf("restarted process got %q, want %q", l.ID(), b.host)
		}
		n, err := l.HandBack(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(jobIDs) {
			t.Fatalf("HandBack = %d, want %d", n, len(jobIDs))
		}
		for _, id := range jobIDs {
			checkHandedBack(t, b.job(t, id), 1, b.host)
		}

		client, err := river.NewClient(riverpgxv5.New(b.pool), riverConfig(l.ID(), b.queue,
			func(ctx context.Context, job *river.Job[blockArgs]) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		completed, cancel := client.Subscribe(river.EventKindJobCompleted)
		defer cancel()
		if err := client.Start(b.ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			client.Stop(ctx) //nolint:errcheck
		})
		for range jobIDs {
			ev := receive(t, completed, 30*time.Second, "a handed back job to complete")
			if !slices.Contains(jobIDs, ev.Job.ID) {
				t.Fatalf("completed job %d is not one of %v", ev.Job.ID, jobIDs)
			}
		}
		t.Logf("resumed %d jobs %s after the kill", len(jobIDs), time.Since(killed).Round(time.Millisecond))
		for _, id := range jobIDs {
			job := b.job(t, id)
			if job.State != rivertype.JobStateCompleted || job.Attempt != 2 || !slices.Equal(job.AttemptedBy, []string{b.host, b.host}) {
				t.Fatalf("job %d: state %s, attempt %d, attempted by %v; want completed on attempt 2 by %q twice",
					id, job.State, job.Attempt, job.AttemptedBy, b.host)
			}
		}
	})

	t.Run("HandBackDeadSkipsLiveIdentities", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lockHandBackDead(t)
		const staleAfter = time.Minute
		alive := b.acquire(t, Config{ID: "alive-" + b.host, PingInterval: time.Hour})
		staleLocked := b.acquire(t, Config{ID: "stale-locked-" + b.host, PingInterval: time.Hour})
		dead, fresh, unknown := "dead-"+b.host, "fresh-"+b.host, "unknown-"+b.host
		_, err := b.pool.Exec(b.ctx, `
			UPDATE herald_workers SET heartbeat_at = now() - interval '2 hours' WHERE id = $1;`, staleLocked.ID())
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.pool.Exec(b.ctx, `
			INSERT INTO herald_workers (id, hostname, pid, version, started_at, heartbeat_at) VALUES
				($1, 'gone', 1, 'v', now() - interval '3 hours', now() - interval '2 hours'),
				($2, 'gone', 1, 'v', now(), now())`, dead, fresh)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			b.pool.Exec(context.Background(), `DELETE FROM herald_workers WHERE id = ANY($1)`, []string{dead, fresh}) //nolint:errcheck
		})

		running := func(maxAttempts, attempt int, by []string, ago time.Duration) int64 {
			id := b.insertJob(t, maxAttempts)
			b.setRunning(t, id, attempt, by, ago)
			return id
		}
		deadRetry := running(25, 1, []string{alive.ID(), dead}, 2*time.Hour)
		deadAtMax := running(2, 2, []string{dead, dead}, 2*time.Hour)
		untouched := []int64{
			running(25, 1, []string{alive.ID()}, 2*time.Hour),       // lock held
			running(25, 1, []string{staleLocked.ID()}, 2*time.Hour), // lock held, heartbeat stale
			running(25, 1, []string{fresh}, 2*time.Hour),            // heartbeat fresh
			running(25, 1, []string{unknown}, 2*time.Hour),          // not in herald_workers
			running(25, 1, []string{dead, alive.ID()}, 2*time.Hour), // last attempted by a live id
			running(25, 1, []string{dead}, 10*time.Second),          // attempted within staleAfter
		}

		n, err := HandBackDead(b.ctx, b.pool, staleAfter, b.logger)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("HandBackDead = %d, want 2", n)
		}
		checkHandedBack(t, b.job(t, deadRetry), 1, dead)
		if job := b.job(t, deadAtMax); job.State != rivertype.JobStateDiscarded {
			t.Fatalf("dead job at max attempts: state %s, want discarded", job.State)
		}
		for _, id := range untouched {
			if job := b.job(t, id); job.State != rivertype.JobStateRunning || len(job.Errors) != 0 {
				t.Fatalf("job %d (attempted by %v): state %s; want running, untouched", id, job.AttemptedBy, job.State)
			}
		}
		if n, err := HandBackDead(b.ctx, b.pool, staleAfter, b.logger); err != nil || n != 0 {
			t.Fatalf("second HandBackDead = %d, %v; want 0", n, err)
		}
		if _, err := HandBackDead(b.ctx, b.pool, 0, nil); err == nil {
			t.Fatal("HandBackDead with staleAfter 0: no error")
		}
	})

	t.Run("ConcurrentHandBacksTakeEachJobOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lockHandBackDead(t)
		dead := "dead-" + b.host
		_, err := b.pool.Exec(b.ctx, `
			INSERT INTO herald_workers (id, hostname, pid, version, heartbeat_at)
			VALUES ($1, 'gone', 1, 'v', now() - interval '2 hours')`, dead)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			b.pool.Exec(context.Background(), `DELETE FROM herald_workers WHERE id = $1`, dead) //nolint:errcheck
		})
		var jobIDs []int64
		for range 30 {
			id := b.insertJob(t, 25)
			b.setRunning(t, id, 1, []string{dead}, 2*time.Hour)
			jobIDs = append(jobIDs, id)
		}

		// Reconcilers and the restarted process race over the same jobs.
		counts := make(chan int, 4)
		errs := make(chan error, 4)
		for range 3 {
			go func() {
				n, err := HandBackDead(b.ctx, b.pool, time.Minute, b.logger)
				counts <- n
				errs <- err
			}()
		}
		go func() {
			l, err := Acquire(b.ctx, b.pool, Config{ID: dead, Logger: b.logger})
			if err != nil {
				counts <- 0
				errs <- err
				return
			}
			n, err := l.HandBack(b.ctx)
			l.Close(context.Background()) //nolint:errcheck // before the test can end
			counts <- n
			errs <- err
		}()
		total := 0
		for range 4 {
			total += receive(t, counts, 30*time.Second, "a hand back")
			if err := receive(t, errs, time.Second, "its error"); err != nil {
				t.Fatal(err)
			}
		}
		if total != len(jobIDs) {
			t.Fatalf("handed back %d in all, want %d", total, len(jobIDs))
		}
		for _, id := range jobIDs {
			checkHandedBack(t, b.job(t, id), 1, dead)
		}
	})
}

// checkAttemptError asserts the job's last error is the hand back's, in the
// shape River writes.
func checkAttemptError(t *testing.T, job *rivertype.JobRow, attempt int, by string) {
	t.Helper()
	if len(job.Errors) != 1 {
		t.Fatalf("job %d has %d errors, want 1", job.ID, len(job.Errors))
	}
	e := job.Errors[0]
	if e.Attempt != attempt || e.Error != fmt.Sprintf(HandBackError, by) || e.Trace != "" || time.Since(e.At).Abs() > time.Minute {
		t.Fatalf("job %d error = %+v; want attempt %d, %q", job.ID, e, attempt, fmt.Sprintf(HandBackError, by))
	}
	var meta struct {
		RescueCount int `json:"river:rescue_count"`
	}
	if err := json.Unmarshal(job.Metadata, &meta); err != nil || meta.RescueCount != 1 {
		t.Fatalf("job %d metadata %s: river:rescue_count %d, %v; want 1", job.ID, job.Metadata, meta.RescueCount, err)
	}
}

// handBackDeadMu serialises the subtests that call HandBackDead: it covers
// every identity in the schema, so each would hand back the other's jobs.
var handBackDeadMu sync.Mutex

// lockHandBackDead holds handBackDeadMu until the test and its cleanups end.
func lockHandBackDead(t *testing.T) {
	handBackDeadMu.Lock()
	t.Cleanup(handBackDeadMu.Unlock)
}

func (b *testBundle) countRunning(t *testing.T, ids []int64, by string) int {
	t.Helper()
	var n int
	err := b.pool.QueryRow(b.ctx, `
		SELECT count(*) FROM river_job
		WHERE id = ANY($1) AND state = 'running' AND attempted_by[array_upper(attempted_by, 1)] = $2`, ids, by).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Environment of the crash helper.
const (
	envCrashHelper = "HERALD_LEASE_CRASH_HELPER"
	envCrashSchema = "HERALD_LEASE_CRASH_SCHEMA"
	envCrashHost   = "HERALD_LEASE_CRASH_HOST"
	envCrashQueue  = "HERALD_LEASE_CRASH_QUEUE"
)

// TestCrashHelper is the Herald process that TestHandBack/ResumesAfterSIGKILL
// kills: it takes the host's id and runs the queue's jobs until killed.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(envCrashHelper) == "" {
		t.Skip("run by TestHandBack/ResumesAfterSIGKILL")
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dbtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = os.Getenv(envCrashSchema)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(ctx, pool, Config{Hostname: os.Getenv(envCrashHost), Version: "crash-helper", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.HandBack(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), riverConfig(l.ID(), os.Getenv(envCrashQueue),
		func(ctx context.Context, job *river.Job[blockArgs]) error {
			<-ctx.Done()
			return ctx.Err()
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("running as %s", l.ID())
	// Killed long before; the timeout only stops an orphan.
	<-time.After(2 * time.Minute)
	t.Fatal("not killed")
}
