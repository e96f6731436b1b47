package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/demo"
	"github.com/herald-im/herald/migrations"
	"github.com/herald-im/herald/subscribers"
)

// campaignRig is a database with a campaign ready to send, and a simulator
// in this test process that outlives the Herald processes under test.
type campaignRig struct {
	t        *testing.T
	pool     *pgxpool.Pool
	sim      *simulator.Server
	svc      *campaigns.Service
	env      []string
	bin      string
	campaign int64
	audience int
}

func newCampaignRig(t *testing.T, perPlatform, batchSize int) *campaignRig {
	t.Helper()
	ctx := context.Background()
	secret := strings.Repeat("s", 40)
	dbURL := freshDatabaseURL(t)
	if err := database.EnsureDatabase(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	pool, err := database.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := migrations.Up(ctx, pool, discard); err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.Start(simulator.Config{Logger: discard, Secret: []byte("rig-simulator-secret")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	ca := filepath.Join(t.TempDir(), "sim.pem")
	if err := os.WriteFile(ca, sim.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	store := apps.NewStore([]byte(secret))
	app, err := store.Create(ctx, pool, "shop", "Shop", "mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := store.Secrets(ctx, pool, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := sim.NewAPNsKey("RIGTEAM001", "RIGKEY0001")
	if err != nil {
		t.Fatal(err)
	}
	sec.Credentials.APNs = &delivery.APNsCredentials{KeyP8: p8, KeyID: "RIGKEY0001", TeamID: "RIGTEAM001", Topic: "com.example.herald", Endpoint: sim.URL}
	sec.Credentials.FCM = &delivery.FCMCredentials{ProjectID: sim.FCMProject, Endpoint: sim.URL, AccessToken: sim.FCMAccessToken}
	if err := store.SetSecrets(ctx, pool, app.ID, sec); err != nil {
		t.Fatal(err)
	}
	slug, name := "all", "Everyone"
	list, err := subscribers.CreateList(ctx, pool, subscribers.ListParams{Slug: &slug, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return demo.Seed(ctx, tx, app.ID, list.ID, perPlatform, "rig", sim, delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush)
	}); err != nil {
		t.Fatal(err)
	}
	// Schedule from here, as the API would; this process runs no workers.
	rc, err := database.NewInserter(pool, discard)
	if err != nil {
		t.Fatal(err)
	}
	svc := campaigns.NewService(pool, rc, nil, nil, campaigns.Config{PublicURL: "http://herald.test", Secret: []byte(secret)}, discard)
	appSlug, cname := "shop", "Rig campaign"
	c, err := svc.Create(ctx, audit.System("test"), campaigns.Params{App: &appSlug, Name: &cname,
		Content:  &campaigns.Content{Title: "Big news", Body: "Everyone gets this once", URL: "https://example.com"},
		Audience: &campaigns.Audience{Lists: []string{"all"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &campaignRig{t: t, pool: pool, sim: sim, svc: svc, bin: heraldBinary(t), campaign: c.ID, audience: 3 * perPlatform, env: []string{
		"HERALD_DATABASE_URL=" + dbURL, "HERALD_SECRET=" + secret, "HERALD_PROVIDER_CA_FILE=" + ca,
		// River's rescuer would take ten minutes: recovery must not need it.
		"HERALD_RESCUE_STUCK_AFTER=10m", fmt.Sprintf("HERALD_BATCH_SIZE=%d", batchSize),
		"HERALD_SHUTDOWN_GRACE=15s", "HERALD_LOG_LEVEL=warn",
		// The simulator's Web Push endpoints are on loopback: opt in.
		"HERALD_WEBPUSH_HOSTS=127.0.0.1", "HERALD_WEBPUSH_PRIVATE_NETWORKS=true",
	}}
}

func (r *campaignRig) schedule() {
	r.t.Helper()
	if _, err := r.svc.ScheduleCampaign(context.Background(), audit.System("test"), r.campaign); err != nil {
		r.t.Fatal(err)
	}
}

func (r *campaignRig) workers() *process {
	return start(r.t, r.bin, r.env, "serve", "--workers-only")
}

// until checks cond every 10 ms until it holds, or fails after within.
func (r *campaignRig) until(within time.Duration, cond func() bool, what func() string) {
	r.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			r.t.Fatalf("after %v: %s", within, what())
		}
	}
}

func (r *campaignRig) status() campaigns.Status {
	st, err := r.svc.Stats(context.Background(), r.campaign)
	if err != nil {
		r.t.Fatal(err)
	}
	return st.Status
}

func (r *campaignRig) waitFinished(within time.Duration, procs ...*process) *campaigns.Stats {
	r.t.Helper()
	r.until(within, func() bool { return r.status() == campaigns.StatusFinished }, func() string {
		var out strings.Builder
		for _, p := range procs {
			out.WriteString(p.out.String())
		}
		var jobErrors string
		r.pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(kind || ': ' || (errors[array_length(errors, 1)]->>'error'), E'\n'), '')
			FROM (SELECT kind, errors FROM river_job WHERE errors IS NOT NULL LIMIT 5) j`).Scan(&jobErrors)
		return fmt.Sprintf("campaign is %s; delivered %d\njob errors:\n%s\n%s", r.status(), r.sim.Delivered(), jobErrors, out.String())
	})
	st, err := r.svc.Stats(context.Background(), r.campaign)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// check compares every audience device's delivery row with what the
// simulator received: each device has the campaign; a second copy only as
// a resend under the campaign's collapse key (it replaces the first on the
// device), never more. It returns how many devices hold two copies.
func (r *campaignRig) check(st *campaigns.Stats) (twice int) {
	r.t.Helper()
	rows, err := r.pool.Query(context.Background(), `SELECT d.platform, d.token, coalesce(x.status, 'none'), coalesce(x.resends, 0)
		FROM devices d LEFT JOIN deliveries x ON x.device_id = d.id AND x.campaign_id = $1`, r.campaign)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	key := fmt.Sprintf("herald-c%d", r.campaign)
	seen := 0
	for rows.Next() {
		var platform, token, status string
		var resends int
		if err := rows.Scan(&platform, &token, &status, &resends); err != nil {
			r.t.Fatal(err)
		}
		seen++
		got := r.sim.Received(platform, token)
		if status != "delivered" || len(got) == 0 {
			r.t.Fatalf("%s device ends %s and received %d", platform, status, len(got))
		}
		if len(got) > 1+resends {
			r.t.Fatalf("%s device received %d copies, resent %d times", platform, len(got), resends)
		}
		for _, m := range got {
			if m.CollapseKey() != key {
				r.t.Fatalf("%s device received a copy with collapse key %q, want %q", platform, m.CollapseKey(), key)
			}
		}
		if len(got) > 1 {
			twice++
		}
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	if seen != r.audience {
		r.t.Fatalf("%d devices, want %d", seen, r.audience)
	}
	if st.Delivered != int64(r.audience) || st.Unknown != 0 || st.Failed != 0 || st.InFlight != 0 || int64(twice) > st.Resent {
		r.t.Fatalf("stats %+v disagree with the simulator (%d devices hold two copies)", st, twice)
	}
	// The figures are counters kept as slices are recorded, also by the
	// run that was killed or stopped: they equal a recount of the rows.
	var sent, delivered, resent int64
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE status = 'delivered'),
		count(*) FILTER (WHERE resends > 0) FROM deliveries WHERE campaign_id = $1`, r.campaign).Scan(&sent, &delivered, &resent); err != nil {
		r.t.Fatal(err)
	}
	if sent != st.Sent || delivered != st.Delivered || resent != st.Resent {
		r.t.Fatalf("stats %+v: counters differ from a recount (%d rows, %d delivered, %d resent)", st, sent, delivered, resent)
	}
	// Retrying failures afterwards finds nothing: no device that has the
	// message is sent it again.
	if n, err := r.svc.RetryFailed(context.Background(), audit.System("test"), r.campaign, campaigns.RetryOptions{}); err != nil || n != 0 {
		r.t.Fatalf("retry-failed after the campaign would send %d (%v)", n, err)
	}
	return twice
}

// TestCampaignSurvivesSIGKILL kills Herald mid-send and starts it again:
// the new process takes the dead one's worker identity, hands its running
// jobs back at once and resumes within seconds (River's rescuer is set to
// ten minutes). Every device gets the campaign; the slices in flight at the
// kill are resent under the campaign's collapse key, so a device shows it
// once.
func TestCampaignSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Herald processes")
	}
	t.Parallel()
	const perPlatform, batch = 7_000, 1000
	r := newCampaignRig(t, perPlatform, batch)
	first := r.workers()
	r.schedule()
	r.until(60*time.Second, func() bool { return r.sim.Delivered() >= 6_000 },
		func() string {
			return fmt.Sprintf("only %d delivered before the kill\n%s", r.sim.Delivered(), first.out)
		})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	atKill := r.sim.Delivered()
	if atKill >= int64(r.audience) {
		t.Fatalf("the campaign finished (%d) before the kill", atKill)
	}
	// The provider may still be answering requests of the killed process;
	// what counts is the new process recording deliveries of its own.
	var restarted time.Time
	if err := r.pool.QueryRow(context.Background(), `SELECT now()`).Scan(&restarted); err != nil {
		t.Fatal(err)
	}
	second := r.workers()
	var resumed time.Duration
	r.until(10*time.Second, func() bool {
		var first *time.Time
		if err := r.pool.QueryRow(context.Background(), `SELECT min(finished_at) FROM deliveries
			WHERE campaign_id = $1 AND status = 'delivered' AND finished_at > $2`, r.campaign, restarted).Scan(&first); err != nil {
			t.Fatal(err)
		}
		if first != nil {
			resumed = first.Sub(restarted)
		}
		return first != nil
	}, func() string { return fmt.Sprintf("nothing delivered within 10 s of the restart\n%s", second.out) })
	st := r.waitFinished(3*time.Minute, first, second)
	twice := r.check(st)
	// In flight at the kill: at most one claim slice per worker of each
	// provider's queue.
	if window := 3 * 8 * min(batch, campaigns.ClaimSlice); twice > window {
		t.Fatalf("%d devices hold two copies, more than the in-flight window of %d", twice, window)
	}
	t.Logf("killed at %d delivered; resumed %v after the restart; %d resent, %d devices hold two copies (one shown)",
		atKill, resumed.Round(time.Millisecond), st.Resent, twice)
	stop(t, second)
}

// TestCampaignSurvivesSIGTERM stops Herald as a deploy does, mid-send:
// running batches finish the slice they are sending, record it and give
// the rest back; the process exits 0 within the grace period with nothing
// in flight and nothing unknown; a new process finishes the campaign and no
// device gets it twice.
func TestCampaignSurvivesSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Herald processes")
	}
	t.Parallel()
	r := newCampaignRig(t, 7_000, 1000)
	first := r.workers()
	r.schedule()
	r.until(60*time.Second, func() bool { return r.sim.Delivered() >= 6_000 },
		func() string {
			return fmt.Sprintf("only %d delivered before the stop\n%s", r.sim.Delivered(), first.out)
		})
	stopped := time.Now()
	stop(t, first)
	took := time.Since(stopped)
	atStop := r.sim.Delivered()
	if atStop >= int64(r.audience) {
		t.Fatalf("the campaign finished (%d) before the stop", atStop)
	}
	if strings.Contains(first.out.String(), "context canceled") {
		t.Fatalf("a job was cut off during the graceful stop:\n%s", first.out)
	}
	var claimed, unknown, running int
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'claimed'), count(*) FILTER (WHERE status = 'unknown')
		FROM deliveries WHERE campaign_id = $1`, r.campaign).Scan(&claimed, &unknown); err != nil {
		t.Fatal(err)
	}
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE state = 'running'`).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if claimed != 0 || unknown != 0 || running != 0 {
		t.Fatalf("after a graceful stop: %d claimed, %d unknown, %d jobs running", claimed, unknown, running)
	}
	second := r.workers()
	st := r.waitFinished(3*time.Minute, first, second)
	if twice := r.check(st); twice != 0 || st.Resent != 0 {
		t.Fatalf("%d devices got the campaign twice after a graceful stop (%d resent)", twice, st.Resent)
	}
	t.Logf("stopped at %d delivered in %v; finished with %d delivered, none twice", atStop, took.Round(time.Millisecond), st.Delivered)
	stop(t, second)
}

// TestCampaignSIGTERMWhenTheGracePeriodRunsOut stops Herald while a provider
// holds some requests longer than the grace period: the process still exits
// in time, the held requests are recorded as unknown (they may have
// arrived), nothing stays claimed, and the next process resends them under
// the campaign's collapse key and sends everything else once.
func TestCampaignSIGTERMWhenTheGracePeriodRunsOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Herald processes")
	}
	t.Parallel()
	r := newCampaignRig(t, 200, 100)
	r.env = append(r.env, "HERALD_SHUTDOWN_GRACE=1s")
	held := 0
	rows, err := r.pool.Query(context.Background(), `SELECT platform, token FROM devices ORDER BY id LIMIT 60`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var platform, token string
		if err := rows.Scan(&platform, &token); err != nil {
			t.Fatal(err)
		}
		r.sim.SetFault(platform, token, simulator.Fault{Delay: 20 * time.Second, Times: 1})
		held++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	first := r.workers()
	r.schedule()
	r.until(30*time.Second, func() bool { return r.sim.Requests() >= int64(r.audience) },
		func() string { return fmt.Sprintf("only %d requests\n%s", r.sim.Requests(), first.out) })
	stopped := time.Now()
	stop(t, first)
	took := time.Since(stopped)
	if took > 18*time.Second {
		t.Fatalf("stopping took %v with a grace period of 1 s", took)
	}
	var claimed, unknown int
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'claimed'), count(*) FILTER (WHERE status = 'unknown')
		FROM deliveries WHERE campaign_id = $1`, r.campaign).Scan(&claimed, &unknown); err != nil {
		t.Fatal(err)
	}
	if claimed != 0 || unknown == 0 || unknown > held {
		t.Fatalf("after the grace period: %d claimed, %d unknown (%d requests were held)", claimed, unknown, held)
	}
	second := r.workers()
	st := r.waitFinished(2*time.Minute, first, second)
	r.check(st)
	if st.Resent < int64(unknown) {
		t.Fatalf("stats %+v: %d unknown after the stop, fewer resent", st, unknown)
	}
	t.Logf("stopped in %v with %d requests held by the provider: %d unknown, then resent", took.Round(time.Millisecond), held, unknown)
	stop(t, second)
}

// TestTwoWorkerProcessesShareACampaign runs two Herald worker processes on
// one database: both send batches, each under its own identity, and no
// device gets the campaign twice.
func TestTwoWorkerProcessesShareACampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Herald processes")
	}
	t.Parallel()
	r := newCampaignRig(t, 4_000, 200)
	a, b := r.workers(), r.workers()
	r.schedule()
	st := r.waitFinished(2*time.Minute, a, b)
	if twice := r.check(st); twice != 0 || st.Resent != 0 {
		t.Fatalf("%d devices got the campaign twice without any crash", twice)
	}
	var clients int
	if err := r.pool.QueryRow(context.Background(), `SELECT count(DISTINCT attempted_by[1]) FROM river_job WHERE kind = 'campaigns.batch'`).Scan(&clients); err != nil {
		t.Fatal(err)
	}
	if clients != 2 {
		t.Fatalf("batches ran under %d worker identities, want 2", clients)
	}
	stop(t, a)
	stop(t, b)
}

// stop sends SIGTERM and expects a clean exit within the grace period.
func stop(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("did not stop within 30 s of SIGTERM:\n%s", p.out)
	}
}
