package web_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/web"
)

// TestSubscriberLimitSaysWhenToRetry: the per-subscriber 429 carries
// Retry-After, as the per-address one does.
func TestSubscriberLimitSaysWhenToRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.sim.NewFCMToken()
	var last *response
	for range b.cfg.RateLimitPerSubscriber + 1 {
		last = b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list,
			"device": map[string]any{"platform": "fcm", "token": token}})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", last.status, last.header, last.body)
	}
}

// TestOnlyThePublicAPIAndPagesSpendTheAddressBudget: static files, probes
// and unknown paths (public or admin) spend nothing of it.
func TestOnlyThePublicAPIAndPagesSpendTheAddressBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const perIP = 3
	app := b.appWith(func(c *config.Config) { c.RateLimitPerIP = perIP })
	const addr = "192.0.2.50"
	for range 2 * perIP {
		for _, r := range []struct{ path, key string }{
			{"/sw.js", ""}, {"/embed.js", ""}, {"/widget.js", ""}, {"/static/style.css", ""}, {"/healthz", ""}, {"/", ""},
			{"/no-such-page", ""}, {"/public/v1/no-such-route", ""}, {"/api/v1/no-such-route", b.admin},
		} {
			res := b.doFrom(app, addr, http.MethodGet, r.path, r.key, "", nil)
			if res.status == http.StatusTooManyRequests {
				t.Fatalf("%s: 429", r.path)
			}
		}
	}
	for i := range perIP {
		if r := b.doFrom(app, addr, http.MethodGet, "/public/v1/apps/"+b.appSlug, "", "", nil); r.status != http.StatusOK {
			t.Fatalf("public request %d: %d %s", i+1, r.status, r.body)
		}
	}
	if r := b.doFrom(app, addr, http.MethodGet, "/l/"+b.list, "", "", nil); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("a page past the budget: %d %v", r.status, r.header)
	}
}

// TestSecretsAreNotCached: every admin answer, and every public one that
// carries a token, says Cache-Control: no-store.
func TestSecretsAreNotCached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name   string
		res    *response
		status int
	}{
		{"new API key", b.postJSON("/api/v1/api-keys", b.admin, map[string]any{"name": "cache test", "role": "agent"}), 201},
		{"app with identity secret", b.do(http.MethodGet, "/api/v1/apps/"+b.appSlug, b.admin, "", nil), 200},
		{"new app", b.postJSON("/api/v1/apps", b.admin, map[string]any{"slug": "nc-" + randomSuffix()[:8], "name": "No cache"}), 201},
		{"admin listing", b.do(http.MethodGet, "/api/v1/lists", b.admin, "", nil), 200},
		{"admin refusal", b.do(http.MethodGet, "/api/v1/lists", "", "", nil), 401},
		{"subscriber token", b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "device": webPushDevice(b.webPushSubscription())}), 202},
	}
	for _, tt := range tests {
		if tt.res.status != tt.status || tt.res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d, Cache-Control %q", tt.name, tt.res.status, tt.res.header.Get("Cache-Control"))
		}
	}
	token := tests[len(tests)-1].res.json(t)["subscriber_token"]
	prefs := b.postJSON("/public/v1/preferences", "", map[string]any{"subscriber_token": token})
	if prefs.status != http.StatusOK || prefs.header.Get("Cache-Control") != "no-store" {
		t.Errorf("preferences link: %d, Cache-Control %q", prefs.status, prefs.header.Get("Cache-Control"))
	}
}

// TestMetricsAccess: /metrics on the main listener answers loopback callers
// only, unless HERALD_METRICS_TOKEN asks for a token or
// HERALD_METRICS_LISTEN serves metrics elsewhere.
func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, url string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	t.Run("Default", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		app := b.appWith(func(c *config.Config) { c.MetricsToken = "" })
		addr := serve(t, app)
		get(t, "http://"+addr+"/healthz")
		if status, body := get(t, "http://"+addr+"/metrics"); status != http.StatusOK || !strings.Contains(body, "herald_http_requests_total") {
			t.Fatalf("from loopback: %d %.200s", status, body)
		}
		if status, _ := get(t, "http://"+addr+"/metrics", "X-Forwarded-For", "203.0.113.9"); status != http.StatusForbidden {
			t.Fatalf("forwarded by a proxy on this host: %d", status)
		}
		// app.Test's connection is not from loopback.
		if r := b.doFrom(app, "203.0.113.9", http.MethodGet, "/metrics", "", "", nil); r.status != http.StatusForbidden {
			t.Fatalf("from elsewhere: %d %s", r.status, r.body)
		}
	})
	t.Run("Token", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const token = "metrics-token-0123456789"
		app := b.appWith(func(c *config.Config) { c.MetricsToken = token })
		addr := serve(t, app)
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + token} {
			if status, _ := get(t, "http://"+addr+"/metrics", "Authorization", auth); status != http.StatusUnauthorized {
				t.Fatalf("loopback with %q: %d", auth, status)
			}
		}
		if r := b.doFrom(app, "203.0.113.9", http.MethodGet, "/metrics", "", "", nil, "Authorization", "bearer "+token); r.status != http.StatusOK {
			t.Fatalf("with the token: %d %s", r.status, r.body)
		}
	})
	t.Run("OwnListener", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		app := b.appWith(func(c *config.Config) { c.MetricsToken, c.MetricsListen = "", "127.0.0.1:1" })
		addr := serve(t, app)
		if status, _ := get(t, "http://"+addr+"/metrics"); status != http.StatusNotFound {
			t.Fatalf("main listener: %d", status)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_test_metric", Help: "A metric."}))
		maddr := serve(t, web.NewMetrics(reg, slog.New(slog.NewTextHandler(io.Discard, nil))))
		if status, body := get(t, "http://"+maddr+"/metrics"); status != http.StatusOK || !strings.Contains(body, "herald_test_metric") {
			t.Fatalf("metrics listener: %d %.200s", status, body)
		}
		if status, _ := get(t, "http://"+maddr+"/api/v1/lists"); status != http.StatusNotFound {
			t.Fatalf("metrics listener serves more: %d", status)
		}
	})
}

// TestStrictTransportSecurity: HSTS on every answer when Herald is served
// over https, none over http.
func TestStrictTransportSecurity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	https := b.appWith(func(c *config.Config) { c.PublicURL = "https://herald.example.com" })
	for _, path := range []string{"/healthz", "/api/v1/lists", "/l/" + b.list, "/public/v1/apps/" + b.appSlug, "/no-such-page"} {
		if r := b.doFrom(https, "192.0.2.60", http.MethodGet, path, "", "", nil); !strings.HasPrefix(r.header.Get("Strict-Transport-Security"), "max-age=") {
			t.Errorf("https %s: %d without HSTS", path, r.status)
		}
	}
	if r := b.do(http.MethodGet, "/healthz", "", "", nil); r.header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS over http")
	}
}

// TestBearerSchemeIsCaseInsensitive (RFC 9110, section 11.1).
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		r := b.doFrom(b.app, "198.51.100.23", http.MethodGet, "/api/v1/lists", "", "", nil, "Authorization", scheme+" "+b.admin)
		if r.status != http.StatusOK {
			t.Errorf("%s: %d %s", scheme, r.status, r.body)
		}
	}
	if r := b.doFrom(b.app, "198.51.100.23", http.MethodGet, "/api/v1/lists", "", "", nil, "Authorization", "Token "+b.admin); r.status != http.StatusUnauthorized {
		t.Errorf("another scheme: %d", r.status)
	}
}

// TestErrorsSpeakJSONNotGo: errors name the field and a reason a person
// understands; no Go type names, and valid JSON is not called invalid.
func TestErrorsSpeakJSONNotGo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	campaign := func(schedule string) []byte {
		return []byte(`{"app":"` + b.appSlug + `","name":"n","content":{"title":"t"},"audience":{"lists":["` + b.list + `"]},"schedule":` + schedule + `}`)
	}
	tests := []struct {
		name, path string
		body       []byte
		status     int
		field      string
		reason     string
	}{
		{"array for an object", "/public/v1/subscribe", []byte(`[]`), 400, "body", "must be a JSON object, not an array"},
		{"string for an object", "/public/v1/subscribe", []byte(`"x"`), 400, "body", "must be a JSON object, not a string"},
		{"number for a string", "/public/v1/subscribe", []byte(`{"list":5}`), 400, "list", "must be a string, not a number"},
		{"fraction for a whole number", "/public/v1/subscribe", []byte(`{"consent_version":1.5}`), 400, "consent_version", "must be a whole number, not 1.5"},
		{"object for a string", "/public/v1/subscribe", []byte(`{"device":{"token":{}}}`), 400, "device.token", "must be a string, not an object"},
		{"broken JSON", "/public/v1/subscribe", []byte(`{"list":}`), 400, "body", "is not valid JSON"},
		{"time that is not one", "/api/v1/campaigns", campaign(`{"mode":"at","at":"yesterday"}`), 422, "schedule.at",
			"must be an RFC 3339 time such as 2026-12-01T09:00:00Z"},
		{"time that is a number", "/api/v1/campaigns", campaign(`{"mode":"at","at":5}`), 422, "schedule.at",
			"must be an RFC 3339 time such as 2026-12-01T09:00:00Z"},
	}
	for _, tt := range tests {
		r := b.do(http.MethodPost, tt.path, b.admin, "application/json", tt.body)
		var p struct{ Field, Reason, Detail string }
		json.Unmarshal(r.body, &p)
		if r.status != tt.status || p.Field != tt.field || !strings.HasPrefix(p.Reason, tt.reason) {
			t.Errorf("%s: %d %s", tt.name, r.status, r.body)
		}
		for _, goName := range []string{"optin.", "campaigns.", "time.Time", "Go ", "struct", "int64", "float64", "UnmarshalJSON"} {
			if strings.Contains(string(r.body), goName) {
				t.Errorf("%s: %q in %s", tt.name, goName, r.body)
			}
		}
	}
}
