package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-im/herald/access"
)

// TestRiverUI: River's UI is served to admins under /console/river, behind
// their session; its writes need the session's CSRF token, which the
// script we put before River's own adds.
func TestRiverUI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	adminSID, adminCSRF := b.sessionFor(b.newUser(access.RoleAdmin))
	marketerSID, _ := b.sessionFor(b.newUser(access.RoleMarketer))

	t.Run("PageForAnAdmin", func(t *testing.T) {
		t.Parallel()
		res := b.send(b.app, request{method: http.MethodGet, path: "/console/river/jobs", session: adminSID})
		body := string(res.body)
		if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
			t.Fatalf("page: %d %s", res.status, body)
		}
		head := body[strings.Index(body, "<head>"):]
		if !strings.HasPrefix(head, `<head><script src="/console/river-csrf.js"></script>`) {
			t.Fatalf("the CSRF script is not first in <head>: %.300s", head)
		}
		if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") ||
			res.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("headers: %v", res.header)
		}
	})

	t.Run("ScriptAddsTheCSRFToken", func(t *testing.T) {
		t.Parallel()
		res := b.send(b.app, request{method: http.MethodGet, path: "/console/river-csrf.js", session: adminSID})
		if res.status != http.StatusOK || !strings.Contains(string(res.body), "X-CSRF-Token") ||
			!strings.HasPrefix(res.header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("script: %d %v %s", res.status, res.header, res.body)
		}
	})

	t.Run("APIForAnAdmin", func(t *testing.T) {
		t.Parallel()
		res := b.send(b.app, request{method: http.MethodGet, path: "/console/river/api/jobs?state=available&limit=5", session: adminSID})
		if res.status != http.StatusOK || !strings.Contains(string(res.body), `"data"`) {
			t.Fatalf("jobs: %d %s", res.status, res.body)
		}
	})

	t.Run("OthersAreRefused", func(t *testing.T) {
		t.Parallel()
		if res := b.send(b.app, request{method: http.MethodGet, path: "/console/river/api/jobs", session: marketerSID}); res.status != http.StatusForbidden {
			t.Errorf("marketer: %d", res.status)
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/console/river/api/jobs", key: b.marketer}); res.status != http.StatusForbidden {
			t.Errorf("marketer's key: %d", res.status)
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/console/river/api/jobs"}); res.status != http.StatusUnauthorized {
			t.Errorf("nobody: %d", res.status)
		}
		// A person's browser is sent to sign in, and back.
		res := b.doFrom(b.app, "198.51.100.61", http.MethodGet, "/console/river/", "", "", nil, "Accept", "text/html,*/*")
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/sign-in?next=%2Fconsole%2Friver%2F" {
			t.Errorf("browser without a session: %d %s", res.status, res.header.Get("Location"))
		}
	})

	t.Run("WritesNeedTheCSRFToken", func(t *testing.T) {
		t.Parallel()
		var id int64
		if err := b.pool.QueryRow(ctx, `INSERT INTO river_job (kind, args, queue, state, scheduled_at, max_attempts, priority)
			VALUES ('herald.test_noop', '{}', 'river_ui_test', 'scheduled', now() + interval '1 day', 1, 1) RETURNING id`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		cancel := []byte(fmt.Sprintf(`{"ids":["%d"]}`, id))
		state := func() string {
			var s string
			if err := b.pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, id).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		res := b.send(b.app, request{method: http.MethodPost, path: "/console/river/api/jobs/cancel", session: adminSID, json: cancel})
		if res.status != http.StatusForbidden || state() != "scheduled" {
			t.Fatalf("without the token: %d %s, job %s", res.status, res.body, state())
		}
		res = b.send(b.app, request{method: http.MethodPost, path: "/console/river/api/jobs/cancel", session: adminSID, csrf: adminCSRF,
			origin: "https://evil.example", json: cancel})
		if res.status != http.StatusForbidden || state() != "scheduled" {
			t.Fatalf("from another site: %d %s, job %s", res.status, res.body, state())
		}
		res = b.send(b.app, request{method: http.MethodPost, path: "/console/river/api/jobs/cancel", session: adminSID, csrf: adminCSRF, json: cancel})
		if res.status != http.StatusOK || state() != "cancelled" {
			t.Fatalf("with the token: %d %s, job %s", res.status, res.body, state())
		}
	})
}

// TestRiverUIInChromium: River's UI renders under Herald's CSP for a
// signed-in admin, and a write from its page carries the CSRF token that
// our script adds.
func TestRiverUIInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// An app of its own: the shared one is shut down by whichever test
	// serving it ends first.
	base := "http://" + serve(t, b.appWith(nil))
	sid, _ := b.sessionFor(b.newUser(access.RoleAdmin))
	kind := "herald.browser_noop_" + randomSuffix()
	var id int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO river_job (kind, args, queue, state, scheduled_at, max_attempts, priority)
		VALUES ($1, '{}', 'river_ui_test', 'scheduled', now() + interval '1 day', 1, 1) RETURNING id`, kind).Scan(&id); err != nil {
		t.Fatal(err)
	}
	stepFor := browserSignedIn(t, base, sid)
	step := func() context.Context { return stepFor(30 * time.Second) }
	if err := chromedp.Do(step(), chromedp.Navigate(base+"/console/river/jobs?state=scheduled"),
		chromedp.Poll[chromedp.Void](`document.body.innerText.includes(`+strconv.Quote(kind)+`)`)); err != nil {
		t.Fatalf("the job list does not show %s: %v", kind, err)
	}
	status, err := chromedp.Run(step(), chromedp.Evaluate[int](fmt.Sprintf(`fetch("/console/river/api/jobs/cancel", {method: "POST",
		headers: {"Content-Type": "application/json"}, body: JSON.stringify({ids: ["%d"]})}).then((r) => r.status)`, id),
		chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("cancel from the page: %d %v", status, err)
	}
	var state string
	if err := b.pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, id).Scan(&state); err != nil || state != "cancelled" {
		t.Fatalf("job %s %v", state, err)
	}
}
