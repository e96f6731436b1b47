package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/config"
)

// TestSecurityHeaders: every answer carries them; the staff pages run no
// inline script and are framed nowhere; embed.js is the deliberate
// exception other sites may load; HSTS and Secure cookies come with https.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()

	t.Run("APIAnswers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, r := range []request{
			{method: http.MethodGet, path: "/api/v1/lists", key: b.admin},
			{method: http.MethodGet, path: "/api/v1/lists"}, // a 401
			{method: http.MethodGet, path: "/public/v1/apps/" + b.appSlug},
			{method: http.MethodGet, path: "/healthz"},
			{method: http.MethodGet, path: "/no-such-path"},
		} {
			res := b.send(b.app, r)
			h := res.header
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" ||
				h.Get("X-Frame-Options") != "DENY" || h.Get("Cross-Origin-Resource-Policy") != "same-origin" ||
				!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
				!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("%s (%d): %v", r.path, res.status, h)
			}
			if h.Get("Strict-Transport-Security") != "" {
				t.Errorf("%s: HSTS over http", r.path)
			}
		}
	})

	t.Run("PagesRunNoInlineScriptAndAreNotFramed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.newUser(access.RoleAgent)
		sid, _ := b.sessionFor(u)
		for _, r := range []request{
			{method: http.MethodGet, path: "/sign-in"},
			{method: http.MethodGet, path: "/account", session: sid},
			{method: http.MethodGet, path: "/account/totp", session: sid},
			{method: http.MethodGet, path: "/access/" + strings.Repeat("x", 43)},
			{method: http.MethodGet, path: "/l/" + b.list},
		} {
			res := b.send(b.app, r)
			csp := res.header.Get("Content-Security-Policy")
			if res.status >= 500 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
				!strings.Contains(csp, "frame-ancestors 'none'") || res.header.Get("X-Frame-Options") != "DENY" ||
				res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s (%d): %v", r.path, res.status, res.header)
			}
			if strings.Contains(string(res.body), "<script>") || strings.Contains(string(res.body), " onclick=") {
				t.Errorf("%s has inline script", r.path)
			}
		}
	})

	t.Run("ScriptsAreSentCompressedToWhoeverTakesIt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		plain := b.doFrom(b.app, "198.51.100.90", http.MethodGet, "/widget.js", "", "", nil)
		for _, c := range []struct {
			accept string
			gzip   bool
		}{{"gzip, deflate, br", true}, {"br;q=1, GZIP;q=0.5", true}, {"gzip;q=0", false}, {"identity", false}, {"", false}} {
			res := b.doFrom(b.app, "198.51.100.90", http.MethodGet, "/widget.js", "", "", nil, "Accept-Encoding", c.accept)
			body := res.body
			if res.header.Get("Content-Encoding") == "gzip" {
				if !c.gzip {
					t.Fatalf("Accept-Encoding %q: gzip", c.accept)
				}
				zr, err := gzip.NewReader(bytes.NewReader(res.body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if len(res.body) > len(plain.body)/2 {
					t.Errorf("compressed %d of %d bytes", len(res.body), len(plain.body))
				}
			} else if c.gzip {
				t.Fatalf("Accept-Encoding %q: not compressed", c.accept)
			}
			if !bytes.Equal(body, plain.body) || res.header.Get("Vary") != "Accept-Encoding" {
				t.Fatalf("Accept-Encoding %q: %d bytes, Vary %q", c.accept, len(body), res.header.Get("Vary"))
			}
		}
	})

	t.Run("EmbedScriptIsTheException", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, path := range []string{"/embed.js", "/widget.js"} {
			res := b.send(b.app, request{method: http.MethodGet, path: path, origin: "https://shop.example"})
			if res.status != http.StatusOK || res.header.Get("Cross-Origin-Resource-Policy") != "cross-origin" ||
				res.header.Get("Access-Control-Allow-Origin") != "*" || res.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("%s: %d %v", path, res.status, res.header)
			}
		}
		// Nothing else is: the service worker and the styles stay ours.
		for _, path := range []string{"/sw.js", "/static/style.css", "/static/console.css"} {
			if res := b.send(b.app, request{method: http.MethodGet, path: path}); res.header.Get("Cross-Origin-Resource-Policy") != "same-origin" {
				t.Errorf("%s: %v", path, res.header)
			}
		}
	})

	t.Run("HTTPSAddsHSTSAndSecureCookies", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		app := b.appWith(func(c *config.Config) { c.PublicURL = "https://herald.example" })
		u := b.newUser(access.RoleAgent)
		for _, path := range []string{"/api/v1/lists", "/sign-in", "/healthz"} {
			if res := b.send(app, request{method: http.MethodGet, path: path}); !strings.HasPrefix(res.header.Get("Strict-Transport-Security"), "max-age=") {
				t.Errorf("%s: no HSTS", path)
			}
		}
		res := b.send(app, request{method: http.MethodPost, path: "/sign-in", ip: "192.0.2.99",
			form: map[string][]string{"email": {u.Email}, "password": {testPassword}}})
		if res.status != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", res.status, res.body)
		}
		for _, line := range res.header.Values("Set-Cookie") {
			if strings.HasPrefix(line, "herald_session=") && !strings.Contains(strings.ToLower(line), "secure") {
				t.Fatalf("session cookie over https without Secure: %q", line)
			}
		}
	})
}
