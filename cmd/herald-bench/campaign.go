package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/demo"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

var benchSimSecret = []byte("herald-bench-simulator-secret")

// simInfo is what the simulator child tells the benchmark.
type simInfo struct {
	URL        string `json:"url"`
	CertPEM    string `json:"cert_pem"`
	APNsP8     string `json:"apns_p8"`
	FCMProject string `json:"fcm_project"`
	FCMToken   string `json:"fcm_token"`
}

// simulatorChild runs the simulator in its own process, so the campaign
// benchmark's memory is Herald's alone, until its stdin closes.
func simulatorChild() error {
	sim, err := simulator.Start(simulator.Config{CountOnly: true, Secret: benchSimSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	p8, err := sim.NewAPNsKey("BENCHTEAM1", "BENCHKEY01")
	if err != nil {
		return err
	}
	json.NewEncoder(os.Stdout).Encode(simInfo{URL: sim.URL, CertPEM: string(sim.CertificatePEM()), APNsP8: p8,
		FCMProject: sim.FCMProject, FCMToken: sim.FCMAccessToken})
	io.Copy(io.Discard, os.Stdin)
	return nil
}

func startSimulatorChild() (*simInfo, func(), error) {
	cmd := exec.Command(os.Args[0], "-simulator-child")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	var info simInfo
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&info); err != nil {
		cmd.Process.Kill()
		return nil, nil, fmt.Errorf("simulator child: %w", err)
	}
	return &info, func() { stdin.Close(); cmd.Wait() }, nil
}

// rssSampler tracks this process's resident memory between marks.
type rssSampler struct{ peak atomic.Int64 }

func (r *rssSampler) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		if kb := vmRSS(); kb > r.peak.Load() {
			r.peak.Store(kb)
		}
	}
}

func vmRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

type campaignRun struct {
	id       int64
	devices  int64
	firstLag time.Duration // first delivery after the scheduled time
	sending  time.Duration // first delivery to finished
	total    time.Duration // scheduled time to finished
	peakRSS  int64         // kB over the whole campaign
	// peakRSSAt100k is the peak until 100,000 messages were delivered, for
	// comparing memory at 100k and 1M devices within one campaign.
	peakRSSAt100k int64
	// cost is what the campaign cost this process and the database.
	cost dbCost
}

func (r campaignRun) rate() float64 { return float64(r.devices) / r.sending.Seconds() }

// dbCost is this process's CPU and the database's writes over a span.
type dbCost struct {
	cpu      time.Duration
	walBytes int64 // the cluster's WAL (pg_stat_wal)
	rows     int64 // rows inserted, updated and deleted in this database (pg_stat_user_tables)
}

// sampleCost reads the counters dbCost is made of.
func sampleCost(ctx context.Context, pool *pgxpool.Pool) (dbCost, error) {
	c := dbCost{cpu: cpuTime()}
	err := pool.QueryRow(ctx, `SELECT (SELECT wal_bytes FROM pg_stat_wal)::bigint,
		(SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables)::bigint`).Scan(&c.walBytes, &c.rows)
	return c, err
}

// since is the cost from an earlier sample to now. Table statistics reach
// pg_stat_user_tables up to a second after a transaction ends: it waits
// for them.
func (c dbCost) since(ctx context.Context, pool *pgxpool.Pool) (dbCost, error) {
	cpu := cpuTime() - c.cpu
	time.Sleep(1500 * time.Millisecond)
	now, err := sampleCost(ctx, pool)
	return dbCost{cpu: cpu, walBytes: now.walBytes - c.walBytes, rows: now.rows - c.rows}, err
}

// per is the cost per message as text.
func (c dbCost) per(messages int64) string {
	m := float64(max(messages, 1))
	return fmt.Sprintf("%.0f us CPU, %.0f WAL bytes, %.1f rows written per message", float64(c.cpu.Microseconds())/m,
		float64(c.walBytes)/m, float64(c.rows)/m)
}

// benchSecret is the benchmarks' HERALD_SECRET.
var benchSecret = []byte("herald-bench-secret-herald-bench-secret!")

// benchApp makes the benchmark's app, sending APNs and FCM to the simulator.
func benchApp(ctx context.Context, pool *pgxpool.Pool, info *simInfo) (*apps.Store, *apps.App, *apps.Secrets, error) {
	store := apps.NewStore(benchSecret)
	app, err := store.Create(ctx, pool, "bench", "Bench", "mailto:bench@example.com")
	if err != nil {
		return nil, nil, nil, err
	}
	sec, err := store.Secrets(ctx, pool, app.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	sec.Credentials.APNs = &delivery.APNsCredentials{KeyP8: info.APNsP8, KeyID: "BENCHKEY01", TeamID: "BENCHTEAM1", Topic: "com.example.herald", Endpoint: info.URL}
	sec.Credentials.FCM = &delivery.FCMCredentials{ProjectID: info.FCMProject, Endpoint: info.URL, AccessToken: info.FCMToken}
	if err := store.SetSecrets(ctx, pool, app.ID, sec); err != nil {
		return nil, nil, nil, err
	}
	return store, app, sec, nil
}

func benchCampaign(ctx context.Context, url string, devices, conc int) error {
	info, stopSim, err := startSimulatorChild()
	if err != nil {
		return err
	}
	defer stopSim()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(info.CertPEM))
	simHTTP := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	pool, err := freshDatabase(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("HERALD_BENCH_VERBOSE") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	store, app, sec, err := benchApp(ctx, pool, info)
	if err != nil {
		return err
	}

	per := devices / 3
	fmt.Printf("\ncampaign benchmark: %d devices (%d per provider), simulator in its own process; seeding...\n", 3*per, per)
	seedStart := time.Now()
	remote := demo.Remote{URL: info.URL, Secret: benchSimSecret}
	for _, p := range []delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush} {
		if _, err := seedList(ctx, pool, app.ID, string(p), per, "b"+string(p), remote, p); err != nil {
			return err
		}
	}
	sampleSlug, sampleName := "sample", "100k sample"
	sample, _ := subscribers.CreateList(ctx, pool, subscribers.ListParams{Slug: &sampleSlug, Name: &sampleName})
	if _, err := pool.Exec(ctx, `INSERT INTO memberships (list_id, subscriber_id, status, confirmed_at)
		SELECT $1, subscriber_id, 'confirmed', now() FROM memberships ORDER BY subscriber_id % 3, subscriber_id LIMIT $2`,
		sample.ID, min(100_000, 3*per)); err != nil {
		return err
	}
	pool.Exec(ctx, `ANALYZE`)
	fmt.Printf("  seeded in %v\n", time.Since(seedStart).Round(time.Second))
	runtime.GC()
	debug.FreeOSMemory()

	// Herald as `herald serve` runs it: River workers on the campaigns queue.
	// Herald's in-flight bound is its default: it follows the latency. The
	// bare libraries run with a fixed one (conc), as a gateway does.
	heraldConc, _ := strconv.Atoi(os.Getenv("HERALD_BENCH_FIXED_CONCURRENCY")) // for comparison; 0: adaptive
	senders := appsSenders(pool, store, roots, heraldConc, logger)
	inserter, err := database.NewInserter(pool, logger)
	if err != nil {
		return err
	}
	optinSvc := optin.NewService(pool, inserter, store, senders, nil, optin.Config{PublicURL: "http://bench.test", Secret: benchSecret,
		ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour, PendingPurgeAfter: time.Hour}, logger)
	svc := campaigns.NewService(pool, inserter, senders, optinSvc, campaigns.Config{PublicURL: "http://bench.test", Secret: benchSecret}, logger)
	workers := river.NewWorkers()
	svc.AddWorkers(workers, nil)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		FetchCooldown: 20 * time.Millisecond, Queues: campaigns.Queues(8)})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	defer client.Stop(context.Background())

	run := func(name string, lists []string) (campaignRun, error) {
		return runCampaign(ctx, pool, svc, simHTTP, info.URL, app.Slug, name, lists)
	}
	db := &deliveryBench{url: info.URL, roots: roots, fcmProject: info.FCMProject, fcmToken: info.FCMToken, conc: conc,
		creds: sec.Credentials}
	subs := make([]simulator.WebPushSubscription, 2000)
	for i := range subs {
		subs[i] = simulator.DerivedSubscription(benchSimSecret, info.URL, fmt.Sprintf("bare-%d", i))
	}
	sender, err := senders.For(ctx, app.ID)
	if err != nil {
		return err
	}
	targets := map[delivery.Platform]float64{delivery.PlatformAPNs: 0.9, delivery.PlatformFCM: 0.9, delivery.PlatformWebPush: 1.6}
	latencies := []time.Duration{0, 20 * time.Millisecond}
	if os.Getenv("HERALD_BENCH_MIXED_ONLY") != "" {
		latencies = nil // the mixed campaigns alone
	}
	for _, latency := range latencies {
		if err := setSimLatency(simHTTP, info.URL, latency); err != nil {
			return err
		}
		fmt.Printf("\n  every provider answer after %v more (bare libraries: %d requests in flight; Herald: adaptive)\n", latency, conc)
		fmt.Printf("  %-10s %18s %22s %9s %16s %10s\n", "provider", "bare library msg/s", "Herald campaign msg/s", "ratio",
			"first delivery", "in flight")
		for _, p := range []delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush} {
			bare, err := db.bare(ctx, p, min(per, 100_000), subs)
			if err != nil {
				return err
			}
			r, err := run("single "+string(p), []string{string(p)})
			if err != nil {
				return err
			}
			ratio := r.rate() / bare.rate()
			fmt.Printf("  %-10s %18.0f %22.0f %8.2fx %15s %10d   (target >= %.1fx: %s)\n", p, bare.rate(), r.rate(), ratio,
				r.firstLag.Round(time.Millisecond), sender.InFlightLimit(p), targets[p], verdict(ratio >= targets[p]))
			fmt.Printf("  %-10s Herald: %s (bare library: %.0f us CPU)\n", "", r.cost.per(r.devices), bare.cpuPer())
		}
	}
	if err := setSimLatency(simHTTP, info.URL, 0); err != nil {
		return err
	}
	fmt.Println()
	small, err := run("mixed 100k", []string{"sample"})
	if err != nil {
		return err
	}
	big, err := run("mixed all", []string{"apns", "fcm", "webpush"})
	if err != nil {
		return err
	}
	if path := os.Getenv("HERALD_BENCH_HEAP_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	fmt.Printf("  mixed campaign, %d devices: %v from scheduled time to finished (%.0f msg/s), first delivery %v after the scheduled time (target <= 250ms: %s)\n",
		big.devices, big.total.Round(time.Millisecond), big.rate(), big.firstLag.Round(time.Millisecond), verdict(big.firstLag <= 250*time.Millisecond))
	fmt.Printf("  mixed campaign cost: %s\n", big.cost.per(big.devices))
	p50, p95, err := timeStats(ctx, svc, big.id, 200)
	if err != nil {
		return err
	}
	fmt.Printf("  stats call on the finished %d-device campaign: p50 %v, p95 %v (target: < 10ms: %s)\n",
		big.devices, p50.Round(10*time.Microsecond), p95.Round(10*time.Microsecond), verdict(p95 < 10*time.Millisecond))
	if err := benchConsolePages(ctx, pool, client, svc, optinSvc, store, senders, big.id, "fcm"); err != nil {
		return fmt.Errorf("console pages: %w", err)
	}
	fmt.Printf("  peak RSS of Herald (simulator excluded): a %d-device campaign %.1f MB; the %d-device campaign %.1f MB after 100k delivered, %.1f MB over all\n",
		small.devices, float64(small.peakRSS)/1024, big.devices, float64(big.peakRSSAt100k)/1024, float64(big.peakRSS)/1024)
	fmt.Printf("  all / first 100k within the campaign: %.2f (target: <= 150 MB and flat: %s)\n",
		float64(big.peakRSS)/float64(big.peakRSSAt100k), verdict(big.peakRSS <= 150*1024 && float64(big.peakRSS) < 1.25*float64(big.peakRSSAt100k)))
	return nil
}

// appsSenders sends as Herald does, with FCM unthrottled: the simulator
// stands in for Google.
func appsSenders(pool *pgxpool.Pool, store *apps.Store, roots *x509.CertPool, conc int, logger *slog.Logger) *apps.Senders {
	return apps.NewSenders(pool, store, delivery.Options{RootCAs: roots, Concurrency: conc,
		Rates: map[delivery.Platform]float64{delivery.PlatformFCM: 0}}, logger)
}

// seedList makes a list of per confirmed subscribers per platform, each with
// one simulated device.
func seedList(ctx context.Context, pool *pgxpool.Pool, appID int64, slug string, per int, prefix string, remote demo.Remote,
	platforms ...delivery.Platform) (*subscribers.List, error) {
	name := "All " + slug
	l, err := subscribers.CreateList(ctx, pool, subscribers.ListParams{Slug: &slug, Name: &name})
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return demo.Seed(ctx, tx, appID, l.ID, per, prefix, remote, platforms...)
	})
	return l, err
}

// runCampaign schedules a campaign a few seconds ahead and waits for it.
func runCampaign(ctx context.Context, pool *pgxpool.Pool, svc *campaigns.Service, sim *http.Client, simURL, app, name string, lists []string) (campaignRun, error) {
	if resp, err := sim.Post(simURL+"/sim/reset", "text/plain", nil); err == nil {
		resp.Body.Close()
	}
	// Far enough ahead that the fan-out goes through River's scheduler, as a
	// campaign scheduled for later does.
	at := time.Now().Add(15 * time.Second)
	c, err := svc.Create(ctx, audit.System("herald bench"), campaigns.Params{App: &app, Name: &name,
		Content:  &campaigns.Content{Title: "Spring sale", Body: "Everything 20% off until Sunday.", URL: "https://shop.example.com/sale"},
		Audience: &campaigns.Audience{Lists: lists}, Schedule: &campaigns.Schedule{Mode: "at", At: &at}})
	if err != nil {
		return campaignRun{}, err
	}
	if _, err := svc.ScheduleCampaign(ctx, audit.System("herald bench"), c.ID); err != nil {
		return campaignRun{}, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	cost0, err := sampleCost(ctx, pool)
	if err != nil {
		return campaignRun{}, err
	}
	var rss rssSampler
	rss.peak.Store(vmRSS())
	stop := make(chan struct{})
	go rss.run(stop)
	defer close(stop)
	var at100k int64
	for {
		if at100k == 0 {
			var stats struct {
				Delivered int64 `json:"delivered"`
			}
			if resp, err := sim.Get(simURL + "/sim/stats"); err == nil {
				json.NewDecoder(resp.Body).Decode(&stats)
				resp.Body.Close()
				if stats.Delivered >= 100_000 {
					at100k = rss.peak.Load()
				}
			}
		}
		cur, err := svc.Get(ctx, c.ID)
		if err != nil {
			return campaignRun{}, err
		}
		if cur.Status == campaigns.StatusFinished {
			done := time.Now()
			st, err := svc.Stats(ctx, c.ID)
			if err != nil {
				return campaignRun{}, err
			}
			var stats struct {
				First int64 `json:"first_delivery_unix_nano"`
			}
			resp, err := sim.Get(simURL + "/sim/stats")
			if err != nil {
				return campaignRun{}, err
			}
			json.NewDecoder(resp.Body).Decode(&stats)
			resp.Body.Close()
			first := time.Unix(0, stats.First)
			if st.Delivered != st.Sent || st.Sent == 0 {
				return campaignRun{}, fmt.Errorf("%s: %+v", name, st)
			}
			cost, err := cost0.since(ctx, pool)
			if err != nil {
				return campaignRun{}, err
			}
			return campaignRun{id: c.ID, devices: st.Delivered, firstLag: first.Sub(at), sending: done.Sub(first), total: done.Sub(at),
				peakRSS: rss.peak.Load(), peakRSSAt100k: at100k, cost: cost}, nil
		}
		if cur.Status == campaigns.StatusFailed {
			return campaignRun{}, fmt.Errorf("%s failed", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timeStats calls Stats n times on a campaign and returns the median and the
// 95th percentile of the calls' durations.
func timeStats(ctx context.Context, svc *campaigns.Service, id int64, n int) (p50, p95 time.Duration, err error) {
	took := make([]time.Duration, n)
	for i := range took {
		start := time.Now()
		if _, err := svc.Stats(ctx, id); err != nil {
			return 0, 0, err
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return took[n/2], took[n*95/100], nil
}

// setSimLatency makes the simulator hold back every provider answer by d.
func setSimLatency(sim *http.Client, simURL string, d time.Duration) error {
	resp, err := sim.Post(fmt.Sprintf("%s/sim/latency?ms=%d", simURL, d.Milliseconds()), "text/plain", nil)
	if err != nil {
		return fmt.Errorf("set simulator latency: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("set simulator latency: %s", resp.Status)
	}
	return nil
}
