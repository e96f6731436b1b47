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
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/apps"
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
	env      []string
	bin      string
	campaign int64
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
	os.WriteFile(ca, sim.CertificatePEM(), 0o600)

	store := apps.NewStore([]byte(secret))
	app, err := store.Create(ctx, pool, "shop", "Shop", "mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := store.Secrets(ctx, pool, app.ID)
	p8, _ := sim.NewAPNsKey("RIGTEAM001", "RIGKEY0001")
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
	// The simulator process that sent these APNs keys is this one; the key
	// is trusted above. Schedule the campaign from here, as the API would.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	svc := campaigns.NewService(pool, nil, nil, campaigns.Config{PublicURL: "http://herald.test", Secret: []byte(secret)}, discard)
	svc.SetRiver(rc)
	appSlug, cname := "shop", "Rig campaign"
	c, err := svc.Create(ctx, campaigns.Params{App: &appSlug, Name: &cname,
		Content:  &campaigns.Content{Title: "Big news", Body: "Everyone gets this once", URL: "https://example.com"},
		Audience: &campaigns.Audience{Lists: []string{"all"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &campaignRig{t: t, pool: pool, sim: sim, bin: heraldBinary(t), campaign: c.ID, env: []string{
		"HERALD_DATABASE_URL=" + dbURL, "HERALD_SECRET=" + secret, "HERALD_PROVIDER_CA_FILE=" + ca,
		"HERALD_JOB_TIMEOUT=20s", "HERALD_RESCUE_STUCK_AFTER=25s", fmt.Sprintf("HERALD_BATCH_SIZE=%d", batchSize),
		"HERALD_LOG_LEVEL=warn",
	}}
}

func (r *campaignRig) schedule() {
	r.t.Helper()
	if _, err := r.pool.Exec(context.Background(), `SELECT 1`); err != nil {
		r.t.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc, _ := river.NewClient(riverpgxv5.New(r.pool), &river.Config{Logger: discard})
	svc := campaigns.NewService(r.pool, nil, nil, campaigns.Config{PublicURL: "http://herald.test", Secret: []byte(strings.Repeat("s", 40))}, discard)
	svc.SetRiver(rc)
	if _, err := svc.ScheduleCampaign(context.Background(), r.campaign); err != nil {
		r.t.Fatal(err)
	}
}

func (r *campaignRig) workers() *process {
	return start(r.t, r.bin, r.env, "serve", "--workers-only")
}

func (r *campaignRig) waitFinished(within time.Duration, procs ...*process) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var status string
		r.pool.QueryRow(context.Background(), `SELECT status FROM campaigns WHERE id = $1`, r.campaign).Scan(&status)
		if status == "finished" {
			return
		}
		if time.Now().After(deadline) {
			var out strings.Builder
			for _, p := range procs {
				out.WriteString(p.out.String())
			}
			var jobErrors string
			r.pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(kind || ': ' || (errors[array_length(errors, 1)]->>'error'), E'\n'), '')
				FROM (SELECT kind, errors FROM river_job WHERE errors IS NOT NULL LIMIT 5) j`).Scan(&jobErrors)
			r.t.Fatalf("campaign is %s after %v; delivered %d\njob errors:\n%s\n%s", status, within, r.sim.Delivered(), jobErrors, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check compares every audience device's delivery row with what the
// simulator received, and returns how many rows are unknown.
func (r *campaignRig) check(audience int) (unknown int) {
	r.t.Helper()
	rows, err := r.pool.Query(context.Background(), `SELECT d.platform, d.token, coalesce(x.status, 'none')
		FROM devices d LEFT JOIN deliveries x ON x.device_id = d.id AND x.campaign_id = $1`, r.campaign)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var platform, token, status string
		rows.Scan(&platform, &token, &status)
		seen++
		got := len(r.sim.Received(platform, token))
		switch {
		case got > 1:
			r.t.Fatalf("%s device %s received the campaign %d times", platform, token, got)
		case status == "delivered" && got != 1:
			r.t.Fatalf("%s device recorded delivered but received %d", platform, got)
		case status == "unknown":
			unknown++
		case status != "delivered":
			r.t.Fatalf("%s device ends %s (received %d)", platform, status, got)
		}
	}
	if seen != audience {
		r.t.Fatalf("%d devices, want %d", seen, audience)
	}
	return unknown
}

// TestCampaignSurvivesSIGKILL kills Herald mid-send and starts it again:
// every device gets the campaign once, none twice, except those the report
// lists as unknown, which are at most the claim slices that were in flight.
func TestCampaignSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Herald processes")
	}
	const perPlatform, batch = 17_000, 1000 // 51,000 devices, the default batch size
	r := newCampaignRig(t, perPlatform, batch)
	first := r.workers()
	r.schedule()
	deadline := time.Now().Add(60 * time.Second)
	for r.sim.Delivered() < 12_000 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d delivered before the kill\n%s", r.sim.Delivered(), first.out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.cmd.Wait()
	atKill := r.sim.Delivered()
	if atKill >= 3*perPlatform {
		t.Fatalf("the campaign finished (%d) before the kill", atKill)
	}
	second := r.workers()
	r.waitFinished(3*time.Minute, first, second)
	unknown := r.check(3 * perPlatform)
	// In flight at the kill: at most one claim slice per worker of each
	// provider's queue.
	if window := 3 * 8 * min(batch, campaigns.ClaimSlice); unknown > window {
		t.Fatalf("%d unknown outcomes, more than the in-flight window of %d", unknown, window)
	}
	var st struct{ delivered, unknown int }
	r.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'unknown')
		FROM deliveries WHERE campaign_id = $1`, r.campaign).Scan(&st.delivered, &st.unknown)
	t.Logf("killed at %d delivered; finished with %d delivered, %d unknown", atKill, st.delivered, st.unknown)
	second.cmd.Process.Signal(syscall.SIGTERM)
}

// TestTwoWorkerProcessesShareACampaign runs two Herald worker processes on
// one database: both send batches and no device gets the campaign twice.
func TestTwoWorkerProcessesShareACampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Herald processes")
	}
	const perPlatform = 6_000
	r := newCampaignRig(t, perPlatform, 200)
	a, b := r.workers(), r.workers()
	r.schedule()
	r.waitFinished(2*time.Minute, a, b)
	if unknown := r.check(3 * perPlatform); unknown != 0 {
		t.Fatalf("%d unknown outcomes without any crash", unknown)
	}
	var clients int
	r.pool.QueryRow(context.Background(), `SELECT count(DISTINCT attempted_by[1]) FROM river_job WHERE kind = 'campaigns.batch'`).Scan(&clients)
	if clients < 2 {
		t.Fatalf("batches ran in %d process(es)", clients)
	}
	for _, p := range []*process{a, b} {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
}
