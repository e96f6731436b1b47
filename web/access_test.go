package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/herald-im/herald/access"
)

// TestAccess: people get in through an invitation, use the API with their
// session, and get out; everything in between refuses what it should.
func TestAccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// invite has an admin (by API key) invite someone and returns the path
	// of their link.
	invite := func(b *testBundle, role access.Role) (path, email string) {
		t.Helper()
		email = "invitee-" + randomSuffix() + "@example.com"
		res := b.postJSON("/api/v1/invitations", b.admin, map[string]any{"email": email, "name": "Ina Vite", "role": role})
		if res.status != http.StatusCreated {
			t.Fatalf("invite: %d %s", res.status, res.body)
		}
		return b.pathOf(res.json(t)["link"].(string)), email
	}
	signIn := func(b *testBundle, ip, email, password string) *response {
		return b.send(b.app, request{method: http.MethodPost, path: "/sign-in", ip: ip,
			form: url.Values{"email": {email}, "password": {password}, "next": {"/account"}}})
	}
	countRows := func(b *testBundle, q string, args ...any) int {
		t.Helper()
		var n int
		if err := b.pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("InvitationToSignOut", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		path, email := invite(b, access.RoleMarketer)
		if res := b.send(b.app, request{method: http.MethodGet, path: path}); res.status != http.StatusOK ||
			!strings.Contains(string(res.body), "Ina Vite") {
			t.Fatalf("invitation page: %d %s", res.status, res.body)
		}
		// Passwords that differ, then one too short: nothing is written,
		// and the link still works.
		res := b.send(b.app, request{method: http.MethodPost, path: path,
			form: url.Values{"name": {"Ina"}, "password": {testPassword}, "password2": {testPassword + "x"}}})
		if res.status != http.StatusUnprocessableEntity {
			t.Fatalf("differing passwords: %d", res.status)
		}
		res = b.send(b.app, request{method: http.MethodPost, path: path,
			form: url.Values{"name": {"Ina"}, "password": {"short"}, "password2": {"short"}}})
		if res.status != http.StatusUnprocessableEntity {
			t.Fatalf("short password: %d", res.status)
		}
		if n := countRows(b, `SELECT count(*) FROM users WHERE lower(email) = lower($1)`, email); n != 0 {
			t.Fatalf("%d users written for a refused form", n)
		}
		res = b.send(b.app, request{method: http.MethodPost, path: path,
			form: url.Values{"name": {"Ina Vite"}, "password": {testPassword}, "password2": {testPassword}}})
		// A new person lands in the console.
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/console" {
			t.Fatalf("set password: %d %s %s", res.status, res.header.Get("Location"), res.body)
		}
		first := cookieValue(res, "herald_session")
		if first == "" {
			t.Fatal("no session after setting the password")
		}
		assertSessionCookie(t, res)
		// The link is spent.
		if res := b.send(b.app, request{method: http.MethodGet, path: path}); res.status != http.StatusConflict {
			t.Fatalf("reused link: %d", res.status)
		}

		// Signing in gives a new session id.
		res = signIn(b, "192.0.2.10", strings.ToUpper(email), testPassword)
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account" {
			t.Fatalf("sign in: %d %s", res.status, res.body)
		}
		sid := cookieValue(res, "herald_session")
		if sid == "" || sid == first {
			t.Fatalf("sign-in kept the session id")
		}
		// The session on the API, under the marketer's role.
		res = b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: sid})
		if res.status != http.StatusOK {
			t.Fatalf("session: %d %s", res.status, res.body)
		}
		var me struct {
			Role      string `json:"role"`
			CSRFToken string `json:"csrf_token"`
		}
		json.Unmarshal(res.body, &me)
		if me.Role != "marketer" || me.CSRFToken == "" {
			t.Fatalf("session: %s", res.body)
		}
		slug := "s-" + randomSuffix()
		create := request{method: http.MethodPost, path: "/api/v1/lists", session: sid,
			json: []byte(`{"slug":"` + slug + `","name":"By session"}`)}
		if res := b.send(b.app, create); res.status != http.StatusForbidden {
			t.Fatalf("without the CSRF token: %d", res.status)
		}
		create.csrf = me.CSRFToken
		create.origin = "https://evil.example"
		if res := b.send(b.app, create); res.status != http.StatusForbidden {
			t.Fatalf("from another origin: %d", res.status)
		}
		create.origin = "http://herald.test"
		if res := b.send(b.app, create); res.status != http.StatusCreated {
			t.Fatalf("with the CSRF token: %d %s", res.status, res.body)
		}
		if n := countRows(b, `SELECT count(*) FROM audit_log WHERE actor_type = 'user' AND action = 'list.create' AND object_id = $1`, slug); n != 1 {
			// The object id is the list's id or slug, depending on the service.
			if n2 := countRows(b, `SELECT count(*) FROM audit_log WHERE actor_type = 'user' AND action = 'list.create' AND summary::text LIKE '%' || $1 || '%'`, slug); n2 != 1 {
				t.Errorf("audit entries for the list made by session: %d", n)
			}
		}
		// A marketer's session may not manage users.
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/users", session: sid}); res.status != http.StatusForbidden {
			t.Fatalf("marketer lists users: %d", res.status)
		}

		// Sign out: the session is gone, the cookie cleared.
		res = b.send(b.app, request{method: http.MethodPost, path: "/sign-out", session: sid, csrf: me.CSRFToken, form: url.Values{}})
		if res.status != http.StatusOK || !strings.Contains(strings.Join(res.header.Values("Set-Cookie"), ";"), "herald_session=;") {
			t.Fatalf("sign out: %d %v", res.status, res.header.Values("Set-Cookie"))
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: sid}); res.status != http.StatusUnauthorized {
			t.Fatalf("after sign-out: %d", res.status)
		}
	})

	t.Run("LinksThatDoNotWork", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		forged := "/access/" + strings.Repeat("A", 43)
		if res := b.send(b.app, request{method: http.MethodGet, path: forged}); res.status != http.StatusNotFound {
			t.Fatalf("forged link: %d", res.status)
		}
		if res := b.send(b.app, request{method: http.MethodPost, path: forged,
			form: url.Values{"name": {"X"}, "password": {testPassword}, "password2": {testPassword}}}); res.status != http.StatusNotFound {
			t.Fatalf("forged link posted: %d", res.status)
		}
		path, email := invite(b, access.RoleAgent)
		if _, err := b.pool.Exec(ctx, `UPDATE access_links SET expires_at = now() - interval '1 second' WHERE lower(email) = lower($1)`, email); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			res := b.send(b.app, request{method: m, path: path,
				form: url.Values{"name": {"X"}, "password": {testPassword}, "password2": {testPassword}}})
			if res.status != http.StatusGone {
				t.Fatalf("%s expired link: %d", m, res.status)
			}
		}
		if n := countRows(b, `SELECT count(*) FROM users WHERE lower(email) = lower($1)`, email); n != 0 {
			t.Fatal("an expired link made a user")
		}
		// Oversized and hostile fields: a clear 4xx, nothing written.
		path, email = invite(b, access.RoleAgent)
		for _, form := range []url.Values{
			{"name": {strings.Repeat("n", 3000)}, "password": {testPassword}, "password2": {testPassword}},
			{"name": {"Nul\x00Byte"}, "password": {testPassword}, "password2": {testPassword}},
			{"name": {"Bad \xff UTF-8"}, "password": {testPassword}, "password2": {testPassword}},
			{"name": {"Long"}, "password": {strings.Repeat("p", 300)}, "password2": {strings.Repeat("p", 300)}},
		} {
			res := b.send(b.app, request{method: http.MethodPost, path: path, form: form})
			if res.status < 400 || res.status >= 500 {
				t.Fatalf("hostile form %q: %d", form.Get("name")[:min(10, len(form.Get("name")))], res.status)
			}
		}
		if n := countRows(b, `SELECT count(*) FROM users WHERE lower(email) = lower($1)`, email); n != 0 {
			t.Fatal("a hostile form made a user")
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: path}); res.status != http.StatusOK {
			t.Fatalf("the link was burnt by refused forms: %d", res.status)
		}
	})

	t.Run("WrongPasswordsLockTheAccountWithoutSayingItExists", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.newUser(access.RoleAgent)
		const ip1, ip2 = "192.0.2.21", "192.0.2.22"
		ghost := "nobody-" + randomSuffix() + "@example.com"
		var lastReal, lastGhost *response
		for i := range 5 {
			lastReal = signIn(b, ip1, u.Email, "wrong password "+string(rune('a'+i)))
			lastGhost = signIn(b, ip2, ghost, "wrong password "+string(rune('a'+i)))
			if i < 4 && (lastReal.status != http.StatusUnauthorized || lastGhost.status != http.StatusUnauthorized) {
				t.Fatalf("attempt %d: %d / %d", i+1, lastReal.status, lastGhost.status)
			}
		}
		// The fifth failure locks both alike, and then even the right
		// password is refused.
		if res := signIn(b, ip1, u.Email, testPassword); res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
			t.Fatalf("locked account with the right password: %d", res.status)
		}
		if res := signIn(b, ip2, ghost, testPassword); res.status != http.StatusTooManyRequests {
			t.Fatalf("locked unknown account: %d", res.status)
		}
		if n := countRows(b, `SELECT count(*) FROM user_sessions WHERE user_id = $1`, u.ID); n != 0 {
			t.Fatalf("%d sessions for a locked account", n)
		}
		// Unknown accounts and wrong passwords read the same.
		ghostAnswer := signIn(b, "192.0.2.23", "other-"+ghost, "whatever it is")
		realAnswer := signIn(b, "192.0.2.24", b.newUser(access.RoleAgent).Email, "whatever it is")
		if ghostAnswer.status != realAnswer.status || errorText(ghostAnswer) != errorText(realAnswer) || errorText(realAnswer) == "" {
			t.Fatalf("answers differ: %d %q / %d %q", ghostAnswer.status, errorText(ghostAnswer), realAnswer.status, errorText(realAnswer))
		}
	})

	t.Run("HostileSignInsAndCookies", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.newUser(access.RoleAgent)
		before := countRows(b, `SELECT count(*) FROM user_sessions WHERE user_id = $1`, u.ID)
		for i, f := range []url.Values{
			{"email": {u.Email + "\x00"}, "password": {testPassword}},
			{"email": {u.Email}, "password": {testPassword + "\x00"}},
			{"email": {"bad \xff utf-8"}, "password": {"x"}},
			{"email": {strings.Repeat("e", 2000) + "@example.com"}, "password": {"x"}},
			{"email": {u.Email}, "password": {strings.Repeat("p", 1500)}},
			{"email": {u.Email}},
			{},
		} {
			res := b.send(b.app, request{method: http.MethodPost, path: "/sign-in", ip: "192.0.2.5" + strconv.Itoa(i), form: f})
			// 422: the edge refuses text PostgreSQL cannot hold, first.
			if res.status != http.StatusUnauthorized && res.status != http.StatusRequestEntityTooLarge && res.status != http.StatusUnprocessableEntity {
				t.Errorf("form %d: %d %s", i, res.status, res.body)
			}
		}
		for _, cookie := range []string{"\x00", strings.Repeat("a", 5000), "\xff\xfe", "a;b", strings.Repeat("A", 43)} {
			res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: cookie})
			if res.status != http.StatusUnauthorized && res.status != http.StatusBadRequest && res.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("cookie %q: %d", invalidPrefix(cookie), res.status)
			}
			if res := b.send(b.app, request{method: http.MethodGet, path: "/account", session: cookie}); res.status >= 500 {
				t.Errorf("account page with cookie %q: %d", invalidPrefix(cookie), res.status)
			}
		}
		if after := countRows(b, `SELECT count(*) FROM user_sessions WHERE user_id = $1`, u.ID); after != before {
			t.Fatal("a hostile sign-in made a session")
		}
	})

	t.Run("TOTPEnrolmentAndSignIn", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.newUser(access.RoleAdmin)
		sid, csrf := b.sessionFor(u)
		res := b.send(b.app, request{method: http.MethodGet, path: "/account/totp", session: sid})
		secret := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindSubmatch(res.body)
		if res.status != http.StatusOK || secret == nil || !strings.Contains(string(res.body), `src="data:image/png;base64,`) {
			t.Fatalf("TOTP page: %d %s", res.status, res.body)
		}
		if res := b.send(b.app, request{method: http.MethodPost, path: "/account/totp", session: sid, csrf: csrf,
			form: url.Values{"code": {"000000"}}}); res.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code: %d", res.status)
		}
		// The page shows a new secret each time: enrol with the latest.
		res = b.send(b.app, request{method: http.MethodGet, path: "/account/totp", session: sid})
		secret = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindSubmatch(res.body)
		code, _ := totp.GenerateCode(string(secret[1]), time.Now())
		res = b.send(b.app, request{method: http.MethodPost, path: "/account/totp", session: sid, csrf: csrf,
			form: url.Values{"code": {code}}})
		codes := regexp.MustCompile(`<li><code>([^<]+)</code></li>`).FindAllSubmatch(res.body, -1)
		if res.status != http.StatusOK || len(codes) < 8 {
			t.Fatalf("enrol: %d %s", res.status, res.body)
		}

		// Sign-in now takes a second step.
		res = signIn(b, "192.0.2.31", u.Email, testPassword)
		pending := cookieValue(res, "herald_session")
		if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/sign-in/code") || pending == "" {
			t.Fatalf("sign in with TOTP: %d %s", res.status, res.header.Get("Location"))
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: pending}); res.status != http.StatusUnauthorized {
			t.Fatalf("a half-signed-in session on the API: %d", res.status)
		}
		pendingCSRF := b.users.CSRFToken(pending)
		if res := b.send(b.app, request{method: http.MethodPost, path: "/sign-in/code", session: pending, csrf: pendingCSRF,
			form: url.Values{"code": {"123456"}}}); res.status != http.StatusUnauthorized {
			t.Fatalf("wrong second-factor code: %d", res.status)
		}
		// The code used to enrol is spent; wait for the next one is not
		// needed: a recovery code works, once.
		res = b.send(b.app, request{method: http.MethodPost, path: "/sign-in/code", session: pending, csrf: pendingCSRF,
			form: url.Values{"code": {string(codes[0][1])}, "next": {"/account"}}})
		full := cookieValue(res, "herald_session")
		if res.status != http.StatusSeeOther || full == "" || full == pending {
			t.Fatalf("recovery code: %d %s", res.status, res.body)
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: full}); res.status != http.StatusOK {
			t.Fatalf("full session: %d", res.status)
		}
		res = signIn(b, "192.0.2.32", u.Email, testPassword)
		pending = cookieValue(res, "herald_session")
		if res := b.send(b.app, request{method: http.MethodPost, path: "/sign-in/code", session: pending, csrf: b.users.CSRFToken(pending),
			form: url.Values{"code": {string(codes[0][1])}}}); res.status != http.StatusUnauthorized {
			t.Fatalf("a recovery code used twice: %d", res.status)
		}
		// And a TOTP code (a later step than the one used to enrol).
		next, _ := totp.GenerateCode(string(secret[1]), time.Now().Add(30*time.Second))
		res = b.send(b.app, request{method: http.MethodPost, path: "/sign-in/code", session: pending, csrf: b.users.CSRFToken(pending),
			form: url.Values{"code": {next}}})
		if res.status != http.StatusSeeOther || cookieValue(res, "herald_session") == "" {
			t.Fatalf("TOTP code: %d %s", res.status, res.body)
		}
	})

	t.Run("FormsNeedTheSessionsToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.newUser(access.RoleAgent)
		sid, csrf := b.sessionFor(u)
		other := b.newUser(access.RoleAgent)
		_, otherCSRF := b.sessionFor(other)
		for _, token := range []string{"", "forged", otherCSRF} {
			res := b.send(b.app, request{method: http.MethodPost, path: "/sign-out-everywhere", session: sid, csrf: token, form: url.Values{}})
			if res.status != http.StatusForbidden {
				t.Fatalf("token %q: %d", token, res.status)
			}
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: sid}); res.status != http.StatusOK {
			t.Fatal("a refused form ended the session")
		}
		if res := b.send(b.app, request{method: http.MethodPost, path: "/sign-out-everywhere", session: sid, csrf: csrf, form: url.Values{}}); res.status != http.StatusOK {
			t.Fatalf("with the token: %d", res.status)
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: sid}); res.status != http.StatusUnauthorized {
			t.Fatal("sign out everywhere left the session")
		}
		// A made-up cookie is nobody.
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: "made-up-session-id"}); res.status != http.StatusUnauthorized {
			t.Fatalf("made-up cookie: %d", res.status)
		}
	})

	t.Run("AdminsManageUsersAndTheLogShowsIt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		admin := b.newUser(access.RoleAdmin)
		sid, csrf := b.sessionFor(admin)
		agent := b.newUser(access.RoleAgent)
		agentSID, _ := b.sessionFor(agent)
		res := b.send(b.app, request{method: http.MethodPost, path: "/api/v1/users/" + itoa(agent.ID) + "/disable", session: sid, csrf: csrf})
		if res.status != http.StatusOK {
			t.Fatalf("disable: %d %s", res.status, res.body)
		}
		if res := b.send(b.app, request{method: http.MethodGet, path: "/api/v1/session", session: agentSID}); res.status != http.StatusUnauthorized {
			t.Fatalf("a disabled user's session: %d", res.status)
		}
		if res := signIn(b, "192.0.2.41", agent.Email, testPassword); res.status != http.StatusUnauthorized {
			t.Fatalf("a disabled user signs in: %d", res.status)
		}
		res = b.send(b.app, request{method: http.MethodGet, path: "/api/v1/audit-log?object_type=user&object_id=" + itoa(agent.ID), session: sid})
		var log struct {
			Items []struct {
				ActorType string `json:"actor_type"`
				ActorID   int64  `json:"actor_id"`
				Action    string `json:"action"`
				Address   string `json:"address"`
			} `json:"items"`
		}
		json.Unmarshal(res.body, &log)
		if res.status != http.StatusOK || len(log.Items) == 0 || log.Items[0].Action != "user.disable" ||
			log.Items[0].ActorType != "user" || log.Items[0].ActorID != admin.ID || log.Items[0].Address == "" {
			t.Fatalf("audit log: %d %s", res.status, res.body)
		}
		// A refused change leaves no entry.
		before := countRows(b, `SELECT count(*) FROM audit_log`)
		res = b.send(b.app, request{method: http.MethodPost, path: "/api/v1/invitations", session: sid, csrf: csrf,
			json: []byte(`{"email":"not an address","name":"X","role":"agent"}`)})
		if res.status != http.StatusUnprocessableEntity {
			t.Fatalf("bad invitation: %d", res.status)
		}
		if after := countRows(b, `SELECT count(*) FROM audit_log WHERE actor_type = 'user' AND actor_id = $1 AND action = 'invitation.create'`, admin.ID); after != 0 || before == 0 {
			t.Fatalf("a refused invitation was logged (%d)", after)
		}
		// Secrets never reach the log.
		if n := countRows(b, `SELECT count(*) FROM audit_log WHERE strpos(summary::text, $1) > 0 OR summary::text ~ '(hk_[a-z0-9]{8}_|[$]argon2)'`, testPassword); n != 0 {
			t.Fatalf("%d audit entries mention secrets", n)
		}
	})
}

func assertSessionCookie(t *testing.T, r *response) {
	t.Helper()
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "herald_session=") {
			l := strings.ToLower(line)
			if !strings.Contains(l, "httponly") || !strings.Contains(l, "samesite=lax") || !strings.Contains(l, "path=/") {
				t.Fatalf("session cookie %q", line)
			}
			return
		}
	}
	t.Fatal("no session cookie")
}

var errorRE = regexp.MustCompile(`id="error"[^>]*>([^<]*)<`)

// errorText is the error a page shows.
func errorText(r *response) string {
	m := errorRE.FindSubmatch(r.body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func invalidPrefix(s string) string { return s[:min(len(s), 8)] }
