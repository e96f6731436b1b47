package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/web"
)

// TestRoutePolicies walks fiber's full route list: every route must have
// declared who may call it, and every route answers every kind of caller
// as its policy says. Run it with -v to see the matrix.
func TestRoutePolicies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	type route struct{ method, path string }
	var routes []route
	seen := map[route]bool{}
	for _, r := range b.app.GetRoutes(true) {
		rt := route{r.Method, r.Path}
		if seen[rt] || r.Method == http.MethodHead || r.Method == "CONNECT" || r.Method == "TRACE" {
			continue
		}
		seen[rt] = true
		routes = append(routes, rt)
	}
	if len(routes) < 60 {
		t.Fatalf("only %d routes listed", len(routes))
	}

	t.Run("EveryRouteHasAPolicy", func(t *testing.T) {
		for _, r := range routes {
			if _, ok := web.RoutePolicy(b.app, r.method, r.path); !ok {
				t.Errorf("%s %s has no policy", r.method, r.path)
			}
		}
		if _, ok := web.RoutePolicy(b.app, http.MethodGet, "/no-such-route"); ok {
			t.Error("a route that does not exist has a policy")
		}
	})

	t.Run("WhoManagesWhat", func(t *testing.T) {
		// The rules, checked on the table itself.
		adminOnly := regexp.MustCompile(`^/api/v1/(users|api-keys|apps|invitations|settings|audit-log|webhooks)`)
		noAgentWrites := regexp.MustCompile(`^/api/v1/(campaigns|lists|imports)`)
		conversations := regexp.MustCompile(`^/api/v1/(conversations|inbox)`)
		for _, r := range routes {
			p, _ := web.RoutePolicy(b.app, r.method, r.path)
			if adminOnly.MatchString(r.path) && (p.Kind != web.PolicyStaff || !slices.Equal(p.Roles, []access.Role{access.RoleAdmin})) {
				if !(r.method == http.MethodGet && strings.HasPrefix(r.path, "/api/v1/teams")) {
					t.Errorf("%s %s: %s, want admin only", r.method, r.path, p)
				}
			}
			if noAgentWrites.MatchString(r.path) && p.Allows(access.RoleAgent) {
				t.Errorf("%s %s: agents may call it", r.method, r.path)
			}
			if conversations.MatchString(r.path) && p.Allows(access.RoleMarketer) {
				t.Errorf("%s %s: marketers may read conversations", r.method, r.path)
			}
			// The API's description is no secret: integrators read it
			// before they hold a key.
			if strings.HasPrefix(r.path, "/api/") && p.Kind != web.PolicyStaff && r.path != "/api/v1/openapi.json" {
				t.Errorf("%s %s: an admin API route that is %s", r.method, r.path, p)
			}
		}
	})

	// The callers.
	type caller struct {
		name    string
		role    access.Role // "" for none
		key     string
		session bool
		csrf    bool
		expired bool
		metrics bool
	}
	callers := []caller{
		{name: "nobody"},
		{name: "bad key", key: "hk_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
		{name: "expired session", session: true, csrf: true, expired: true, role: access.RoleAdmin},
		{name: "metrics token", metrics: true},
	}
	for _, role := range access.Roles {
		callers = append(callers, caller{name: "key " + string(role), role: role, key: b.keyFor(role)})
	}
	for _, role := range access.Roles {
		callers = append(callers, caller{name: "session " + string(role), role: role, session: true, csrf: true},
			caller{name: "session " + string(role) + " no csrf", role: role, session: true})
	}
	// Writes go to made-up ids (a DELETE must not take the fixtures away);
	// reads go to real ones, and an allowed read must succeed.
	params := strings.NewReplacer(
		":id", "999999999", ":slug", "no-such-list", ":list", "no-such-list", ":token", "no-such-token",
		":app", "no-such-app", ":platform", "apns", ":device", "999999998", ":user", "999999997", ":action", "pause",
	)
	fixtures := b.matrixFixtures()
	// The app's logo is read through /brand/:app/logo.
	if _, err := b.store.SetLogo(context.Background(), b.pool, audit.Operator("test", "test"), b.appSlug,
		append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)); err != nil {
		t.Fatal(err)
	}
	// And the list's, through /brand/lists/:list/logo.
	if _, err := b.pool.Exec(context.Background(), `UPDATE lists SET logo = $2, logo_type = 'image/png' WHERE slug = $1`,
		b.list, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)); err != nil {
		t.Fatal(err)
	}
	convApp := b.appWith(func(c *config.Config) { c.RateLimitPerSubscriber = 1 << 20 })
	streamApp := b.appWith(nil)
	realParams := func(path string) string {
		id := fixtures.subscriber
		switch {
		case strings.HasPrefix(path, "/api/v1/campaigns/"):
			id = fixtures.campaign
		case strings.HasPrefix(path, "/api/v1/imports/"):
			id = fixtures.importID
		case strings.HasPrefix(path, "/api/v1/users/"):
			id = fixtures.user
		case strings.HasPrefix(path, "/api/v1/teams/"):
			id = fixtures.team
		case strings.HasPrefix(path, "/api/v1/conversations/"):
			id = fixtures.conversation
		case strings.HasPrefix(path, "/api/v1/messages/"):
			id = fixtures.message
		case strings.HasPrefix(path, "/api/v1/webhooks/"):
			id = fixtures.webhook
		case strings.HasPrefix(path, "/api/v1/attachments/"), strings.HasPrefix(path, "/public/v1/conversation/attachments/"):
			id = fixtures.attachment
		}
		slug := b.list
		if strings.HasPrefix(path, "/api/v1/apps/") {
			slug = b.appSlug
		}
		out := strings.NewReplacer(":id", id, ":slug", slug, ":list", b.list, ":app", b.appSlug, ":token", "no-such-token").Replace(path)
		if strings.HasPrefix(path, "/l/") {
			out += "?app=" + b.appSlug
		}
		if path == "/api/v1/conversations/search" {
			out += "?q=matrix"
		}
		return out
	}
	// Reads succeed, but those of made-up links.
	mustSucceed := func(r route) bool {
		return r.method == http.MethodGet && !strings.Contains(r.path, ":token")
	}
	// What each caller must get: denied answers are exact, allowed ones
	// are anything but a refusal (the handler may well say 404 or 422 to
	// the made-up ids and empty bodies).
	type verdict int
	const (
		allowed verdict = iota
		unauthorized
		forbidden
		toSignIn // a page's 303 to /sign-in
	)
	expect := func(p web.Policy, method string, c caller) verdict {
		switch p.Kind {
		case web.PolicyPublic:
			return allowed
		case web.PolicyMetrics:
			if c.metrics {
				return allowed
			}
			return unauthorized
		case web.PolicyAccount, web.PolicySigningIn:
			if !c.session || c.expired {
				return toSignIn
			}
			if method != http.MethodGet && !c.csrf {
				return forbidden
			}
			return allowed
		}
		switch {
		case c.expired, c.role == "":
			return unauthorized
		case c.session && method != http.MethodGet && !c.csrf:
			return forbidden
		case !p.Allows(c.role):
			return forbidden
		}
		return allowed
	}

	var matrix strings.Builder
	fmt.Fprintf(&matrix, "%-8s %-48s %-26s", "method", "path", "policy")
	for _, c := range callers {
		fmt.Fprintf(&matrix, " %-6s", abbreviate(c.name))
	}
	matrix.WriteString("\n")
	admin := b.newUser(access.RoleAdmin)
	expiredID, _ := b.sessionFor(admin)
	if _, err := b.pool.Exec(ctx, `UPDATE user_sessions SET expires_at = now() - interval '1 second'`+
		` WHERE user_id = $1`, admin.ID); err != nil {
		t.Fatal(err)
	}
	// POST /sign-in is answered by the credentials in the form, not by
	// the caller: the matrix sends a real user's.
	signInUser := b.newUser(access.RoleAgent)
	sessionUsers := map[access.Role]users.User{}
	for _, role := range access.Roles {
		sessionUsers[role] = b.newUser(role)
	}

	for i, r := range routes {
		p, _ := web.RoutePolicy(b.app, r.method, r.path)
		fmt.Fprintf(&matrix, "%-8s %-48s %-26s", r.method, r.path, p)
		for _, c := range callers {
			req := request{method: r.method, path: params.Replace(r.path), ip: fmt.Sprintf("203.0.113.%d", 1+i%250)}
			if r.method == http.MethodGet {
				req.path = realParams(r.path)
			}
			if c.key != "" {
				req.key = c.key
			}
			if c.metrics {
				req.key = testMetricsToken
			}
			if c.session {
				if c.expired {
					req.session = expiredID
				} else {
					// A fresh session per call: some routes end the one
					// they are called with (sign-out).
					id, csrf := b.sessionFor(sessionUsers[c.role])
					req.session = id
					if c.csrf {
						req.csrf = csrf
					}
				}
			}
			if r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch {
				// The River UI under /console speaks JSON, as the APIs do.
				if strings.HasPrefix(r.path, "/api/") || strings.HasPrefix(r.path, "/public/") || strings.HasPrefix(r.path, "/console/") {
					req.json = []byte("{}")
				} else {
					req.form = url.Values{}
				}
				if r.path == "/sign-in" {
					req.form = url.Values{"email": {signInUser.Email}, "password": {testPassword}}
				}
			}
			app := b.app
			if strings.HasPrefix(r.path, "/public/v1/conversation/") && r.path != "/public/v1/conversation/session" &&
				r.method != http.MethodOptions {
				// The subscriber's routes answer to their conversation token,
				// whoever else the caller is; one subscriber makes all these
				// calls, within a raised per-subscriber budget.
				req.key, app = fixtures.conversationToken, convApp
			}
			req.stream = r.method == http.MethodGet && strings.HasSuffix(r.path, "/events")
			if req.stream && app == b.app {
				// Streams outlive the request; they go to an app of their
				// own, which no other test shuts down.
				app = streamApp
			}
			res := b.send(app, req)
			fmt.Fprintf(&matrix, " %-6d", res.status)
			if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("Content-Security-Policy") == "" ||
				res.header.Get("Referrer-Policy") == "" {
				t.Errorf("%s %s as %s: security headers missing: %v", r.method, r.path, c.name, res.header)
			}
			want := expect(p, r.method, c)
			got := res.status
			var ok bool
			switch want {
			case allowed:
				ok = got != http.StatusUnauthorized && got != http.StatusForbidden && got < 500 &&
					!(got == http.StatusSeeOther && strings.HasPrefix(res.header.Get("Location"), "/sign-in?"))
				// A read answers, or sends a signed-in person onwards (303).
				if mustSucceed(r) && got >= 400 {
					ok = false
				}
			case unauthorized:
				ok = got == http.StatusUnauthorized
			case forbidden:
				ok = got == http.StatusForbidden
			case toSignIn:
				ok = got == http.StatusSeeOther && strings.HasPrefix(res.header.Get("Location"), "/sign-in?next=")
			}
			if !ok {
				t.Errorf("%s %s as %s: %d (Location %q), want %s\n%s", r.method, r.path, c.name, got,
					res.header.Get("Location"), [...]string{"allowed (a 2xx or 303 for a read)", "401", "403", "303 to /sign-in"}[want], res.body)
			}
		}
		matrix.WriteString("\n")
	}
	var legend []string
	for _, c := range callers {
		legend = append(legend, abbreviate(c.name)+"="+c.name)
	}
	t.Logf("route × caller matrix (columns: %s)\n%s", strings.Join(legend, ", "), matrix.String())
}

// abbreviate is a caller's column heading in the matrix.
func abbreviate(name string) string {
	r := strings.NewReplacer("session ", "s:", "key ", "k:", "admin", "adm", "marketer", "mkt", "agent", "agt",
		" no csrf", "-", "nobody", "none", "bad key", "badkey", "expired session", "expird", "metrics token", "metric")
	return r.Replace(name)
}

// matrixIDs are real objects for the matrix's reads.
type matrixIDs struct {
	subscriber, campaign, importID, user, team           string
	conversation, message, attachment, conversationToken string
	webhook                                              string
}

func (b *testBundle) matrixFixtures() matrixIDs {
	b.t.Helper()
	var ids matrixIDs
	res := b.postJSON("/api/v1/subscribers", b.admin, map[string]any{"external_id": "matrix-" + randomSuffix()})
	ids.subscriber = fmt.Sprint(int64(res.json(b.t)["id"].(float64)))
	res = b.postJSON("/api/v1/campaigns", b.admin, map[string]any{"app": b.appSlug, "name": "Matrix",
		"content": map[string]any{"title": "Hello"}, "audience": map[string]any{"lists": []string{b.list}}})
	ids.campaign = fmt.Sprint(int64(res.json(b.t)["id"].(float64)))
	res = b.do(http.MethodPost, "/api/v1/imports", b.admin, "text/csv", []byte("external_id\nmatrix-import-"+randomSuffix()+"\n"))
	ids.importID = fmt.Sprint(int64(res.json(b.t)["id"].(float64)))
	res = b.postJSON("/api/v1/teams", b.admin, map[string]any{"name": "Matrix " + randomSuffix()})
	ids.team = fmt.Sprint(int64(res.json(b.t)["id"].(float64)))
	ids.user = fmt.Sprint(b.newUser(access.RoleAgent).ID)
	cf := b.conversationFixture()
	ids.conversation, ids.message, ids.attachment = fmt.Sprint(cf.conversationID), fmt.Sprint(cf.messageID), fmt.Sprint(cf.attachmentID)
	ids.conversationToken = cf.token
	res = b.postJSON("/api/v1/webhooks", b.admin, map[string]any{"url": "https://crm.example.com/matrix"})
	ids.webhook = fmt.Sprint(int64(res.json(b.t)["endpoint"].(map[string]any)["id"].(float64)))
	return ids
}
