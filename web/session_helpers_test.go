package web_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/web"
)

// request is one HTTP request as a browser or a script would send it.
type request struct {
	method, path string
	key          string // Authorization: Bearer
	session      string // the herald_session cookie
	csrf         string // X-CSRF-Token, or the csrf form field with form
	origin       string
	ip           string
	json         []byte
	form         url.Values
	rawForm      string // a form body sent as it is (encodings url.Values would mend)
	// stream sends the request to app over a real connection and returns
	// once the answer's headers arrive: an event stream never ends.
	stream bool
}

// send sends r through app.
func (b *testBundle) send(app *fiber.App, r request) *response {
	b.t.Helper()
	var body io.Reader = http.NoBody
	contentType := ""
	switch {
	case r.form != nil:
		if r.csrf != "" {
			r.form.Set("csrf", r.csrf)
		}
		body, contentType = strings.NewReader(r.form.Encode()), "application/x-www-form-urlencoded"
	case r.rawForm != "":
		body, contentType = strings.NewReader(r.rawForm), "application/x-www-form-urlencoded"
	case r.json != nil:
		body, contentType = bytes.NewReader(r.json), "application/json"
	}
	req := httptest.NewRequest(r.method, r.path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.session != "" {
		// Raw, as a hostile client would send it (http.Cookie drops bytes).
		req.Header.Set("Cookie", "herald_session="+r.session)
	}
	if r.csrf != "" && r.form == nil {
		req.Header.Set("X-CSRF-Token", r.csrf)
	}
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	ip := r.ip
	if ip == "" {
		ip = "198.51.100.77"
	}
	req.Header.Set("X-Forwarded-For", ip)
	req.Header.Set("User-Agent", "herald-test/1.0")
	if r.stream {
		return b.sendStream(app, req)
	}
	resp, err := app.Test(req, 30_000)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: out}
}

// testPassword is every test user's password.
const testPassword = "correct horse battery staple"

// newUser makes an active user with role and testPassword.
func (b *testBundle) newUser(role access.Role) users.User {
	b.t.Helper()
	u, err := b.users.Create(context.Background(), audit.Operator("test", "test"), users.NewUser{
		Email: "u-" + randomSuffix() + "@example.com", Name: "Test " + string(role), Role: role, Password: testPassword,
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// sessionFor starts a session for u as a sign-in would, and returns its id
// (the cookie) and CSRF token.
func (b *testBundle) sessionFor(u users.User) (id, csrf string) {
	b.t.Helper()
	res, err := b.users.NewSession(context.Background(), u, netip.MustParseAddr("198.51.100.7"), "herald-test")
	if err != nil {
		b.t.Fatal(err)
	}
	return res.SessionID, b.users.CSRFToken(res.SessionID)
}

// cookieValue is the value a response sets for cookie name ("" if none).
func cookieValue(r *response, name string) string {
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

// keyFor is the bundle's API key of role.
func (b *testBundle) keyFor(role access.Role) string {
	switch role {
	case access.RoleAdmin:
		return b.admin
	case access.RoleMarketer:
		return b.marketer
	}
	return b.agent
}

var (
	servedMu sync.Mutex
	served   = map[*fiber.App]string{}
)

// sendStream sends req to app on a loopback listener (one per app, for the
// package's run) and returns the status, headers and first bytes.
func (b *testBundle) sendStream(app *fiber.App, req *http.Request) *response {
	b.t.Helper()
	addr := b.addrOf(app)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, req.Method, "http://"+addr+req.URL.RequestURI(), req.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	out.Header = req.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 4096)
	n := 0
	if resp.StatusCode == http.StatusOK {
		n, _ = io.ReadAtLeast(resp.Body, first, 1)
	} else {
		n, _ = io.ReadFull(resp.Body, first)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: first[:n]}
}

// addrOf serves app on a loopback listener for the rest of the package's
// run, once, and returns its address.
func (b *testBundle) addrOf(app *fiber.App) string {
	b.t.Helper()
	servedMu.Lock()
	defer servedMu.Unlock()
	addr, ok := served[app]
	if !ok {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.t.Fatal(err)
		}
		go web.Serve(app, ln)
		addr = ln.Addr().String()
		served[app] = addr
	}
	return addr
}
