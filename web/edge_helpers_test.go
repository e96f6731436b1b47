package web_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/web"
)

// appWith is another Herald app over the shared environment, with its own
// limiters and metrics, and the configuration changed by change.
func (b *testBundle) appWith(change func(*config.Config)) *fiber.App {
	b.t.Helper()
	cfg := *b.cfg
	if change != nil {
		change(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	senders := apps.NewSenders(b.pool, b.store, delivery.Options{RootCAs: b.sim.CertPool()}, logger)
	camp := campaigns.NewService(b.pool, dbtest.Inserter(b.pool), senders, b.optin, campaigns.Config{PublicURL: cfg.PublicURL, Secret: cfg.Secret, BatchSize: 50}, logger)
	return web.New(web.Deps{
		Config: &cfg, Pool: b.pool, River: b.river, OptIn: b.optin, Campaigns: camp, Apps: b.store, Senders: senders, Users: b.users, Subscribers: subscribers.NewService(b.pool, dbtest.Inserter(b.pool), nil),
		Conversations: b.conv, Hub: b.hub, Webhooks: b.hooks, Logger: logger, Registry: prometheus.NewRegistry(),
		Ready: func(ctx context.Context) error { return b.pool.Ping(ctx) },
	})
}

// serve runs app on a loopback port, as `herald serve` does, until the test
// ends, and returns its address.
func serve(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- web.Serve(app, ln) }()
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// doFrom is do from another client address (the tests trust
// X-Forwarded-For).
func (b *testBundle) doFrom(app *fiber.App, ip, method, path, key, contentType string, body []byte, header ...string) *response {
	b.t.Helper()
	req, err := http.NewRequest(method, "http://herald.test"+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := app.Test(req, 30_000)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: out}
}

// endlessBody is a request body made as it is read, never held in memory:
// prefix, then pattern over and over up to size bytes. sent is how much the
// client took from it.
type endlessBody struct {
	prefix, pattern []byte
	size            int64
	sent            atomic.Int64
}

func (e *endlessBody) Read(p []byte) (int, error) {
	at := e.sent.Load()
	if at >= e.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), e.size-at)]
	n := 0
	for n < len(p) {
		pos := at + int64(n)
		if pos < int64(len(e.prefix)) {
			n += copy(p[n:], e.prefix[pos:])
			continue
		}
		n += copy(p[n:], e.pattern[(pos-int64(len(e.prefix)))%int64(len(e.pattern)):])
	}
	e.sent.Add(int64(n))
	return n, nil
}
