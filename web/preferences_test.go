package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

func TestPreferencesPageAndAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ext := "pref-" + randomSuffix()
	hmac := optin.IdentityHMAC(b.identity, ext)
	second, name, single := "second-"+randomSuffix(), "Second list", "single"
	if _, err := subscribers.CreateList(ctx, b.pool, subscribers.ListParams{Slug: &second, Name: &name, OptIn: &single}); err != nil {
		t.Fatal(err)
	}
	for _, list := range []string{b.list, second} {
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": list, "external_id": ext,
			"identity_hmac": hmac, "device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}})
		if res.status >= 300 {
			t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
	}
	res := b.postJSON("/public/v1/preferences", "", map[string]any{"app": b.appSlug, "external_id": ext, "identity_hmac": hmac})
	if res.status != http.StatusOK {
		t.Fatalf("preferences: %d %s", res.status, res.body)
	}
	prefs := res.json(t)
	if len(prefs["memberships"].([]any)) != 2 {
		t.Fatalf("memberships %v", prefs["memberships"])
	}
	// The page lists both and leaves one list with one press.
	page := b.pathOf(prefs["preferences_url"].(string))
	html := b.do(http.MethodGet, page, "", "", nil)
	if html.status != http.StatusOK || !strings.Contains(string(html.body), "Second list") ||
		html.header.Get("Referrer-Policy") != "same-origin" { // the token-bearing URL goes to Herald only
		t.Fatalf("page: %d %v %s", html.status, html.header, html.body)
	}
	left := b.do(http.MethodPost, page, "", "application/x-www-form-urlencoded", []byte("list="+second))
	if left.status != http.StatusSeeOther {
		t.Fatalf("leave: %d %s", left.status, left.body)
	}
	var subID int64
	b.pool.QueryRow(ctx, `SELECT id FROM subscribers WHERE external_id = $1`, ext).Scan(&subID)
	l, _ := subscribers.GetList(ctx, b.pool, second)
	if st, _ := subscribers.MembershipStatusOf(ctx, b.pool, l.ID, subID); st != subscribers.StatusUnsubscribed {
		t.Fatalf("second list: %s", st)
	}
	// The JSON API leaves everything else.
	res = b.postJSON("/public/v1/unsubscribe", "", map[string]any{"app": b.appSlug, "external_id": ext, "identity_hmac": hmac})
	if res.status != http.StatusOK || strings.Contains(string(res.body), `"pending"`) || strings.Contains(string(res.body), `"confirmed"`) {
		t.Fatalf("unsubscribe all: %d %s", res.status, res.body)
	}
}

func TestRateLimitPerSubscriber(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.sim.NewFCMToken()
	var last *response
	for range b.cfg.RateLimitPerSubscriber + 1 {
		last = b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list,
			"device": map[string]any{"platform": "fcm", "token": token}})
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("request %d: %d %s", b.cfg.RateLimitPerSubscriber+1, last.status, last.body)
	}
}

func TestAdminAPIListsAndSubscribers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	slug := "api-" + randomSuffix()
	res := b.postJSON("/api/v1/lists", b.marketer, map[string]any{"slug": slug, "name": "API list", "visibility": "private"})
	if res.status != http.StatusCreated {
		t.Fatalf("create list: %d %s", res.status, res.body)
	}
	if r := b.postJSON("/api/v1/lists", b.marketer, map[string]any{"slug": slug, "name": "again"}); r.status != http.StatusConflict {
		t.Fatalf("duplicate slug: %d", r.status)
	}
	r := b.do(http.MethodPatch, "/api/v1/lists/"+slug, b.admin, "application/json", []byte(`{"consent_text":"New words"}`))
	if r.status != http.StatusOK || r.json(t)["consent_version"].(float64) != 2 {
		t.Fatalf("patch list: %d %s", r.status, r.body)
	}
	var ids []float64
	for i := range 3 {
		r := b.postJSON("/api/v1/subscribers", b.marketer, map[string]any{"external_id": slug + "-" + string(rune('a'+i)), "timezone": "Europe/Berlin"})
		if r.status != http.StatusCreated {
			t.Fatalf("create subscriber: %d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(float64)
		ids = append(ids, id)
		m := b.do(http.MethodPut, "/api/v1/lists/"+slug+"/subscribers/"+ftoa(id), b.admin, "application/json", []byte(`{"status":"confirmed"}`))
		if m.status != http.StatusOK {
			t.Fatalf("membership: %d %s", m.status, m.body)
		}
	}
	// Keyset pages of 2 over the list's confirmed members.
	page1 := b.do(http.MethodGet, "/api/v1/subscribers?list="+slug+"&status=confirmed&limit=2", b.agent, "", nil).json(t)
	next := page1["next_after"].(float64)
	page2 := b.do(http.MethodGet, "/api/v1/subscribers?list="+slug+"&status=confirmed&limit=2&after="+ftoa(next), b.agent, "", nil).json(t)
	if len(page1["items"].([]any)) != 2 || len(page2["items"].([]any)) != 1 || page2["next_after"] != nil {
		t.Fatalf("pages %v / %v", page1, page2)
	}
	var got []float64
	for _, p := range []map[string]any{page1, page2} {
		for _, item := range p["items"].([]any) {
			got = append(got, item.(map[string]any)["id"].(float64))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("pages hold %v, want the created subscribers %v in order", got, ids)
	}
	if r := b.do(http.MethodDelete, "/api/v1/lists/"+slug, b.agent, "", nil); r.status != http.StatusForbidden {
		t.Fatalf("agent delete: %d", r.status)
	}
	if r := b.do(http.MethodDelete, "/api/v1/lists/"+slug, b.marketer, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.status)
	}
}

func TestMetricsAndProbes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(http.MethodGet, "/healthz", "", "", nil)
	if r := b.do(http.MethodGet, "/readyz", "", "", nil); r.status != http.StatusOK {
		t.Fatalf("readyz %d", r.status)
	}
	// Requests with other methods reuse the pooled request buffers; the
	// labels recorded earlier must not change underneath.
	for range 20 {
		b.do(http.MethodDelete, "/no-such-route", "", "", nil)
		b.do(http.MethodPost, "/public/v1/unsubscribe", "", "application/json", []byte(`{}`))
	}
	m := b.do(http.MethodGet, "/metrics", testMetricsToken, "", nil)
	if m.status != http.StatusOK {
		t.Fatalf("metrics: %d", m.status)
	}
	for _, line := range strings.Split(string(m.body), "\n") {
		if !strings.HasPrefix(line, "herald_http_requests_total{") {
			continue
		}
		method := strings.SplitN(strings.TrimPrefix(line, `herald_http_requests_total{method="`), `"`, 2)[0]
		if method != "GET" && method != "POST" && method != "PUT" && method != "PATCH" && method != "DELETE" && method != "OPTIONS" {
			t.Errorf("metrics line with a rewritten method label: %s", line)
		}
	}
	if !strings.Contains(string(m.body), `herald_http_requests_total{method="GET",route="/healthz",status="200"}`) {
		t.Fatalf("no /healthz count in the metrics")
	}
}
