package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"golang.org/x/sync/errgroup"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/live"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/web"
)

// benchConsolePages times, in Herald's HTTP handlers (the server's time,
// without a network), the API calls the console's pages make, on the
// campaign benchmark's database: a million subscribers and a finished
// million-device campaign. Target: p95 under 100 ms each.
func benchConsolePages(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], svc *campaigns.Service,
	optinSvc *optin.Service, store *apps.Store, senders *apps.Senders, campaignID int64, listSlug string) error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	inserter, err := database.NewInserter(pool, logger)
	if err != nil {
		return err
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		switch k {
		case "HERALD_SECRET":
			return string(benchSecret), true
		case "HERALD_PUBLIC_URL":
			return "http://bench.test", true
		}
		return "", false
	}, true)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	notifier := audit.NewNotifier(pool, time.Second, logger)
	go notifier.Run(runCtx)
	hub := live.NewHub(pool, live.Config{Channels: []string{conversations.PresenceChannel}}, logger)
	convSvc := conversations.NewService(pool, inserter, senders, conversations.Config{Secret: benchSecret, PublicURL: cfg.PublicURL,
		Notifier: notifier, Consent: optinSvc}, logger)
	app := web.New(web.Deps{Config: cfg, Pool: pool, River: client, OptIn: optinSvc, Campaigns: svc, Apps: store,
		Subscribers: subscribers.NewService(pool, inserter, logger), Users: users.NewService(pool, users.Config{Secret: benchSecret,
			PublicURL: cfg.PublicURL}, logger),
		Conversations: convSvc, Hub: hub, Logger: logger, Registry: prometheus.NewRegistry(), Background: runCtx,
		Ready: func(ctx context.Context) error { return pool.Ping(ctx) }})
	key, _, err := apikeys.Create(ctx, pool, "console bench", apikeys.RoleAdmin, time.Hour)
	if err != nil {
		return err
	}
	var mid, last int64
	var ext string
	if err := pool.QueryRow(ctx, `SELECT max(id) FROM subscribers`).Scan(&last); err != nil {
		return err
	}
	if err := pool.QueryRow(ctx, `SELECT id, coalesce(external_id, '') FROM subscribers WHERE id >= $1 ORDER BY id LIMIT 1`, last/2).
		Scan(&mid, &ext); err != nil {
		return err
	}
	// Real conversations: subscribers of the campaign write, through the
	// same service the public API uses, so the inbox pages read what a busy
	// support team's would.
	camp, err := svc.Get(ctx, campaignID)
	if err != nil {
		return err
	}
	const conversationsWanted = 5000
	began := time.Now()
	writers, err := pool.Query(ctx, `SELECT id FROM subscribers WHERE id >= $1 ORDER BY id LIMIT $2`, mid, conversationsWanted)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(writers, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			_, _, err := convSvc.Send(gctx, audit.Subscriber(id, netip.MustParseAddr("192.0.2.1")), id, camp.AppID,
				conversations.SendRequest{Body: fmt.Sprintf("Question %d: where is my order?", i), ClientKey: fmt.Sprintf("bench-%d", id)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("bench conversations: %w", err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE conversations, conversation_messages`); err != nil {
		return err
	}
	fmt.Printf("\n  %d conversations written through the conversations service in %v\n", len(ids), time.Since(began).Round(time.Millisecond))
	var conv int64
	if err := pool.QueryRow(ctx, `SELECT id FROM conversations WHERE subscriber_id = $1`, ids[len(ids)/2]).Scan(&conv); err != nil {
		return err
	}
	calls := []struct{ name, path string }{
		{"subscribers, first page", "/api/v1/subscribers?limit=50"},
		{"subscribers, a page in the middle", fmt.Sprintf("/api/v1/subscribers?limit=50&after=%d", mid)},
		{"subscribers of a list", "/api/v1/subscribers?limit=50&list=" + listSlug},
		{"subscriber search (external id)", "/api/v1/subscribers?external_id=" + ext},
		{"subscriber page", fmt.Sprintf("/api/v1/subscribers/%d", mid)},
		{"campaign page (campaign)", fmt.Sprintf("/api/v1/campaigns/%d", campaignID)},
		{"campaign page (counters)", fmt.Sprintf("/api/v1/campaigns/%d/stats", campaignID)},
		{"campaign page (timeline)", fmt.Sprintf("/api/v1/campaigns/%d/timeline", campaignID)},
		{"inbox (unassigned)", "/api/v1/conversations?assignee=none&limit=100"},
		{"inbox (all open)", "/api/v1/conversations?assignee=any&limit=100"},
		{"inbox (counts)", "/api/v1/conversations/counts"},
		{"conversation (with context)", fmt.Sprintf("/api/v1/conversations/%d", conv)},
		{"conversation (messages)", fmt.Sprintf("/api/v1/conversations/%d/messages?limit=200", conv)},
		{"subscriber's conversations", fmt.Sprintf("/api/v1/subscribers/%d/conversations", ids[len(ids)/2])},
	}
	fmt.Printf("\n  console pages on %d subscribers and the finished campaign (server time, 100 calls each; target p95 < 100ms)\n", last)
	for _, call := range calls {
		var took []time.Duration
		for range 100 {
			req := httptest.NewRequest(http.MethodGet, call.path, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			start := time.Now()
			res, err := app.Test(req, 30_000)
			if err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, res.Body); err != nil {
				return err
			}
			res.Body.Close()
			took = append(took, time.Since(start))
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d", call.path, res.StatusCode)
			}
		}
		slices.Sort(took)
		p95 := took[94]
		fmt.Printf("  %-36s p50 %8v  p95 %8v  %s\n", call.name, took[49].Round(10*time.Microsecond), p95.Round(10*time.Microsecond),
			verdict(p95 < 100*time.Millisecond))
	}
	return nil
}
