package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/demo"
	"github.com/herald-im/herald/live"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/web"
)

// chatRig is Herald as `herald serve` runs it, for the conversation load:
// the HTTP server on a loopback port, River working the campaign queues
// and the conversations queue.
type chatRig struct {
	pool      *pgxpool.Pool
	conv      *conversations.Service
	campaigns *campaigns.Service
	base      string
	appID     int64
	appSlug   string
	chatters  []int64
	tokens    []string
	http      *http.Client
}

// benchConversation measures inbound messages through the public API and
// agent replies to the provider while a campaign sends, beside replies
// with no campaign running.
func benchConversation(ctx context.Context, url string, devices, rate, seconds, conc int) error {
	info, stopSim, err := startSimulatorChild()
	if err != nil {
		return err
	}
	defer stopSim()
	pool, err := freshDatabase(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Printf("\nconversation benchmark: %d inbound messages/s for %d s through the public API while a %d-device campaign sends; seeding...\n",
		rate, seconds, devices)
	rig, stop, err := newChatRig(ctx, pool, info, devices, conc)
	if err != nil {
		return err
	}
	defer stop()

	// Every chatter opens their conversation first, so the load measures
	// messages, not first contacts.
	if _, err := rig.inbound(ctx, len(rig.chatters), len(rig.chatters), "open"); err != nil {
		return err
	}
	quiet, err := rig.replies(ctx, 10*time.Second)
	if err != nil {
		return err
	}

	// The campaign is throttled to last as long as the load, so that it
	// sends during all of it.
	throttle := devices * 60 / max(seconds, 1)
	at := time.Now().Add(2 * time.Second)
	name, list := "load", "crowd"
	c, err := rig.campaigns.Create(ctx, audit.System("herald bench"), campaigns.Params{App: &rig.appSlug, Name: &name,
		Content:  &campaigns.Content{Title: "Spring sale", Body: "Everything 20% off until Sunday.", URL: "https://shop.example.com/sale"},
		Audience: &campaigns.Audience{Lists: []string{list}}, Schedule: &campaigns.Schedule{Mode: "at", At: &at}, ThrottlePerMinute: &throttle})
	if err != nil {
		return err
	}
	if _, err := rig.campaigns.ScheduleCampaign(ctx, audit.System("herald bench"), c.ID); err != nil {
		return err
	}
	time.Sleep(time.Until(at) + 500*time.Millisecond)
	cpu0, commits0 := cpuTime(), rig.commits(ctx)
	var load *loadResult
	var busy []time.Duration
	var wg sync.WaitGroup
	var loadErr, replyErr error
	wg.Go(func() { load, loadErr = rig.inbound(ctx, rate, rate*seconds, "load") })
	wg.Go(func() { busy, replyErr = rig.replies(ctx, time.Duration(seconds)*time.Second) })
	wg.Wait()
	if loadErr != nil || replyErr != nil {
		return fmt.Errorf("load: %v; replies: %v", loadErr, replyErr)
	}
	cpu, commits := cpuTime()-cpu0, rig.commits(ctx)-commits0
	st, err := rig.campaigns.Stats(ctx, c.ID)
	if err != nil {
		return err
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM conversation_messages WHERE author = 'subscriber' AND client_key LIKE 'load-%'`).
		Scan(&stored); err != nil {
		return err
	}
	lost := load.accepted - stored
	fmt.Printf("  inbound: %d sent in %v (%.0f/s, %d started late), %d accepted, %d refused %v; stored %d: lost %d (target 0: %s)\n",
		load.sent, load.took.Round(time.Millisecond), float64(load.sent)/load.took.Seconds(), load.late, load.accepted,
		load.sent-load.accepted, load.statuses, stored, lost, verdict(lost == 0 && load.accepted == load.sent))
	fmt.Printf("  inbound latency: p50 %v, p99 %v\n", pct(load.latencies, 50), pct(load.latencies, 99))
	fmt.Printf("  campaign meanwhile: %s, %d delivered of %d (throttled to %d/min to span the load)\n",
		st.Status, st.Delivered, devices/3*3, throttle)
	qp99, bp99 := pct(quiet, 99), pct(busy, 99)
	fmt.Printf("  %-40s %10s %10s\n", "agent reply call -> provider accepted", "p50", "p99")
	fmt.Printf("  %-40s %10v %10v\n", "no campaign (baseline)", pct(quiet, 50), qp99)
	fmt.Printf("  %-40s %10v %10v   %.2fx the baseline p99 (target: p99 <= 1 s under load: %s)\n", "during the campaign and the load",
		pct(busy, 50), bp99, float64(bp99)/float64(max(qp99, time.Millisecond)), verdict(bp99 <= time.Second))
	msgs := float64(load.accepted + len(busy))
	fmt.Printf("  cost during the load: %.0f us CPU and %.2f database commits per inbound message or reply (campaign sends included in both)\n",
		float64(cpu.Microseconds())/msgs, float64(commits)/msgs)
	fmt.Println("  (a reply's time is from the Reply call to the commit recording the provider's acceptance, which follows the simulator's answer)")
	return nil
}

func newChatRig(ctx context.Context, pool *pgxpool.Pool, info *simInfo, devices, conc int) (*chatRig, func(), error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, app, _, err := benchApp(ctx, pool, info)
	if err != nil {
		return nil, nil, err
	}
	remote := demo.Remote{URL: info.URL, Secret: benchSimSecret}
	per := devices / 3
	if _, err := seedList(ctx, pool, app.ID, "crowd", per, "crowd", remote,
		delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush); err != nil {
		return nil, nil, err
	}
	chat, err := seedList(ctx, pool, app.ID, "chat", 5000, "chat", remote, delivery.PlatformAPNs)
	if err != nil {
		return nil, nil, err
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		return nil, nil, err
	}
	rows, err := pool.Query(ctx, `SELECT subscriber_id FROM memberships WHERE list_id = $1 ORDER BY subscriber_id`, chat.ID)
	if err != nil {
		return nil, nil, err
	}
	chatters, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, nil, err
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(info.CertPEM))
	senders := appsSenders(pool, store, roots, conc, logger)
	inserter, err := database.NewInserter(pool, logger)
	if err != nil {
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	notifier := audit.NewNotifier(pool, 20*time.Millisecond, logger)
	go notifier.Run(runCtx)
	optinSvc := optin.NewService(pool, inserter, store, senders, nil, optin.Config{PublicURL: "http://bench.test", Secret: benchSecret,
		ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour, PendingPurgeAfter: time.Hour}, logger)
	campaignSvc := campaigns.NewService(pool, inserter, senders, optinSvc, campaigns.Config{PublicURL: "http://bench.test", Secret: benchSecret}, logger)
	convSvc := conversations.NewService(pool, inserter, senders, conversations.Config{Secret: benchSecret, PublicURL: "http://bench.test",
		Notifier: notifier, Consent: optinSvc}, logger)
	workers := river.NewWorkers()
	campaignSvc.AddWorkers(workers, nil)
	convSvc.AddWorkers(workers)
	queues := campaigns.Queues(8)
	for name, q := range conversations.Queues(20) {
		queues[name] = q
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Logger: logger,
		FetchCooldown: 20 * time.Millisecond, Queues: queues})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if err := client.Start(runCtx); err != nil {
		cancel()
		return nil, nil, err
	}
	hub := live.NewHub(pool, live.Config{Channels: []string{conversations.PresenceChannel}}, logger)
	go hub.Run(runCtx)
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		switch k {
		case "HERALD_SECRET":
			return string(benchSecret), true
		case "HERALD_PUBLIC_URL":
			return "http://bench.test", true
		case "HERALD_RATE_LIMIT_IP", "HERALD_RATE_LIMIT_SUBSCRIBER":
			return "100000000", true
		}
		return "", false
	}, true)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	httpApp := web.New(web.Deps{Config: cfg, Pool: pool, River: client, OptIn: optinSvc, Campaigns: campaignSvc, Apps: store,
		Subscribers: subscribers.NewService(pool, inserter, logger), Users: users.NewService(pool, users.Config{Secret: benchSecret,
			PublicURL: cfg.PublicURL}, logger),
		Conversations: convSvc, Hub: hub, Logger: logger, Registry: prometheus.NewRegistry(),
		Ready: func(ctx context.Context) error { return pool.Ping(ctx) }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, nil, err
	}
	go web.Serve(httpApp, ln)
	rig := &chatRig{pool: pool, conv: convSvc, campaigns: campaignSvc, base: "http://" + ln.Addr().String(), appID: app.ID,
		appSlug: app.Slug, chatters: chatters,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 1024,
			TLSClientConfig: &tls.Config{}}, Timeout: 30 * time.Second}}
	for _, id := range chatters {
		tok, _ := convSvc.SessionToken(id, app.ID)
		rig.tokens = append(rig.tokens, tok)
	}
	stop := func() {
		httpApp.ShutdownWithTimeout(time.Second)
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer stopCancel()
		client.Stop(stopCtx)
		cancel()
	}
	return rig, stop, nil
}

// loadResult is what an inbound load did.
type loadResult struct {
	sent, accepted, late int
	statuses             map[int]int
	latencies            []time.Duration
	took                 time.Duration
}

// inbound sends total messages at rate per second, round robin over the
// chatters, open loop: each request starts on its schedule, however long
// earlier ones take (up to 1,024 in flight; one that cannot start on time
// is counted late). Latencies include retries after a 503.
func (r *chatRig) inbound(ctx context.Context, rate, total int, tag string) (*loadResult, error) {
	res := &loadResult{statuses: map[int]int{}, latencies: make([]time.Duration, 0, total)}
	var mu sync.Mutex
	slots := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		time.Sleep(time.Until(due))
		select {
		case slots <- struct{}{}:
		default:
			res.late++
			slots <- struct{}{}
		}
		wg.Go(func() {
			defer func() { <-slots }()
			n := i % len(r.chatters)
			body, _ := json.Marshal(map[string]string{"body": "Hello, is anyone there? #" + strconv.Itoa(i),
				"client_key": tag + "-" + strconv.Itoa(i)})
			// As an SDK does: a 503 is retried after its Retry-After with the
			// same client key, which lands the message once.
			t0 := time.Now()
			status, err := 0, error(nil)
			for attempt := 0; attempt < 5; attempt++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/public/v1/conversation/messages", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+r.tokens[n])
				var resp *http.Response
				if resp, err = r.http.Do(req); err != nil {
					failed.Store(err)
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
				if status != http.StatusServiceUnavailable {
					break
				}
				retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				time.Sleep(time.Duration(max(retry, 1)) * time.Second)
			}
			took := time.Since(t0)
			if status == http.StatusOK {
				status = http.StatusCreated // an earlier attempt had landed it
			}
			mu.Lock()
			defer mu.Unlock()
			res.sent++
			res.statuses[status]++
			if status == http.StatusCreated {
				res.accepted++
				res.latencies = append(res.latencies, took)
			}
		})
	}
	wg.Wait()
	res.took = time.Since(start)
	if err, _ := failed.Load().(error); err != nil && res.accepted == 0 {
		return nil, err
	}
	return res, nil
}

// replies sends an agent reply every 50 ms for d, each to the next
// chatter's conversation, and returns for each the time from the Reply
// call to the commit that recorded the provider's acceptance.
func (r *chatRig) replies(ctx context.Context, d time.Duration) ([]time.Duration, error) {
	started := map[int64]time.Time{}
	author := conversations.Author{KeyID: 0, Name: "Bench agent"}
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		conv, err := r.conv.SubscriberConversation(ctx, r.chatters[i%len(r.chatters)], r.appID)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		m, err := r.conv.Reply(ctx, audit.System("herald bench"), author, conv.ID, conversations.Reply{Body: "We are on it."})
		if err != nil {
			return nil, err
		}
		started[m.ID] = t0
		time.Sleep(50 * time.Millisecond)
	}
	ids := make([]int64, 0, len(started))
	for id := range started {
		ids = append(ids, id)
	}
	var out []time.Duration
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, err := r.pool.Query(ctx, `SELECT message_id, finished_at FROM message_deliveries
			WHERE message_id = ANY($1) AND status = 'delivered'`, ids)
		if err != nil {
			return nil, err
		}
		out = out[:0]
		for rows.Next() {
			var id int64
			var at time.Time
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, at.Sub(started[id]))
		}
		rows.Close()
		if len(out) == len(ids) {
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d replies reached the provider within 2 minutes", len(out), len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *chatRig) commits(ctx context.Context) int64 {
	var n int64
	r.pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Millisecond)
}
