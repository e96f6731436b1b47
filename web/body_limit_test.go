package web_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/config"
)

// TestBodyLimitsWhileReading sends bodies larger than their route's limit,
// with no declared length, to a Herald served on a real socket: each is
// answered 413 while most of it is still unsent, and the connection is
// closed rather than read on.
func TestBodyLimitsWhileReading(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const importLimit = 1 << 20
	app := b.appWith(func(c *config.Config) { c.MaxImportBytes = importLimit })
	addr := serve(t, app)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// What a client can write past what the server reads: the sockets'
	// buffers on loopback.
	const slack = 16 << 20
	tests := []struct {
		name, method, path, key, contentType string
		prefix, pattern                      string
		limit                                int64
	}{
		{"PublicJSON", "POST", "/public/v1/subscribe", "", "application/json", `{"list":"`, "a", int64(b.cfg.MaxBodyBytes)},
		{"AdminJSON", "POST", "/api/v1/lists", b.admin, "application/json", `{"name":"`, "a", int64(b.cfg.MaxBodyBytes)},
		{"AdminJSONWithoutKey", "PATCH", "/api/v1/subscribers/1", "", "application/json", `{"email":"`, "a", int64(b.cfg.MaxBodyBytes)},
		{"PageForm", "POST", "/u/some-token", "", "application/x-www-form-urlencoded", "list=", "a", 4 << 10},
		{"NoBodyExpected", "GET", "/healthz", "", "application/json", "", "a", 1 << 10},
		{"UnknownPath", "POST", "/no/such/path", "", "application/json", "", "a", 1 << 10},
		{"Import", "POST", "/api/v1/imports", b.admin, "text/csv", "external_id,email\n", "someone-01,someone@example.com\n", importLimit},
		{"ImportWithoutKey", "POST", "/api/v1/imports", "", "text/csv", "external_id\n", "x\n", importLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := &endlessBody{prefix: []byte(tt.prefix), pattern: bytes.Repeat([]byte(tt.pattern), 4096), size: 256 << 20}
			req, err := http.NewRequest(tt.method, "http://"+addr+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.TransferEncoding = []string{"chunked"}
			req.Header.Set("Content-Type", tt.contentType)
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("no answer (%d bytes sent): %v", body.sent.Load(), err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			want := http.StatusRequestEntityTooLarge
			if tt.name == "ImportWithoutKey" {
				want = http.StatusUnauthorized // a streamed body is read by its handler, after the key
			}
			if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), out)
			}
			if !resp.Close {
				t.Error("the connection stays open with an unread body on it")
			}
			if sent := body.sent.Load(); sent > tt.limit+slack {
				t.Errorf("the server read on: %d MB sent", sent>>20)
			}
		})
	}
}

// TestBodyWithinTheLimit checks bodies up to the limit are read whole, and
// a chunked body leaves the connection ready for the next request.
func TestBodyWithinTheLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := serve(t, b.appWith(nil))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Exactly the limit: an object whose name is padded with spaces.
	exact := `{"subscriber_token":"forged"` + strings.Repeat(" ", b.cfg.MaxBodyBytes-len(`{"subscriber_token":"forged"}`)) + "}"
	chunked := func(body string) string {
		var s strings.Builder
		for len(body) > 0 {
			n := min(len(body), 1000)
			fmt.Fprintf(&s, "%x\r\n%s\r\n", n, body[:n])
			body = body[n:]
		}
		return s.String() + "0\r\n\r\n"
	}
	req := "POST /public/v1/preferences HTTP/1.1\r\nHost: herald.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(exact)
	if _, err := io.WriteString(conn, req+req+"GET /healthz HTTP/1.1\r\nHost: herald.test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for i, want := range []int{401, 401, 200} {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("response %d: %d %s", i+1, resp.StatusCode, out)
		}
	}
}

// TestUnreadBodyIsNotTheNextRequest sends, as the body of a request the
// server refuses before reading its body, another request: it must not be
// served (request smuggling through a body left on the connection).
func TestUnreadBodyIsNotTheNextRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := serve(t, b.appWith(nil))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// fasthttp reads the first 8 KiB of a streamed body before the
	// handler runs; the smuggled request starts right after them.
	smuggled := "GET /healthz HTTP/1.1\r\nHost: herald.test\r\n\r\n"
	body := strings.Repeat("x", 8<<10) + smuggled
	fmt.Fprintf(conn, "POST /api/v1/imports HTTP/1.1\r\nHost: herald.test\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	all, err := io.ReadAll(conn) // to the server's close, or the deadline
	if n := strings.Count(string(all), "HTTP/1.1 "); n != 1 || !strings.HasPrefix(string(all), "HTTP/1.1 401") {
		t.Errorf("%d responses to one request:\n%s", n, all)
	}
	if err != nil {
		t.Errorf("the connection was left open with the unread body on it: %v", err)
	}
}

// TestCompressedBodiesAreRefused: a compressed body can inflate without a
// bound, past any limit on what was sent.
func TestCompressedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	io.WriteString(w, `{"list":"`+strings.Repeat("a", 4<<20)+`"}`)
	w.Close()
	if z.Len() >= b.cfg.MaxBodyBytes {
		t.Fatalf("the compressed body (%d bytes) should fit the limit", z.Len())
	}
	for _, path := range []string{"/public/v1/subscribe", "/api/v1/lists"} {
		res := b.doFrom(b.app, "198.51.100.23", http.MethodPost, path, b.admin, "application/json", z.Bytes(), "Content-Encoding", "gzip")
		if res.status != http.StatusUnsupportedMediaType || !strings.Contains(string(res.body), "Content-Encoding") {
			t.Errorf("%s: %d %s", path, res.status, res.body)
		}
	}
}

// TestHeadersThatAreNotText: an API key with bytes PostgreSQL refuses is an
// unknown key (401), not a failed lookup (500).
func TestHeadersThatAreNotText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := serve(t, b.appWith(nil))
	for _, key := range []string{"hk_\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8_x", "hk_\x00\x00\x00\x00\x00\x00\x00\x00_x", "hk_\xed\xa0\x80abcde_x"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /api/v1/lists HTTP/1.1\r\nHost: herald.test\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", key)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode >= 500 || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest) {
			t.Errorf("key %q: %d %s", key, resp.StatusCode, out)
		}
	}
}

// TestPathParametersThatAreNotText: raw bytes in a path reach the handlers
// as they are (fiber does not unescape paths); those that are not text are
// a 422 naming the parameter, not a failed lookup.
func TestPathParametersThatAreNotText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := serve(t, b.appWith(nil))
	tests := []struct{ method, path, key, field string }{
		{"GET", "/api/v1/lists/a\xffb", b.admin, "slug"},
		{"GET", "/api/v1/apps/\xed\xa0\x80", b.admin, "slug"},
		{"DELETE", "/api/v1/apps/" + b.appSlug + "/credentials/\xc0\x80", b.admin, "platform"},
		{"GET", "/public/v1/apps/\xfe", "", "app"},
		{"GET", "/l/\xff", "", "list"},
		{"POST", "/u/\xff", "", "token"},
	}
	for _, tt := range tests {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: herald.test\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", tt.method, tt.path, tt.key)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(out), `"field":"`+tt.field+`"`) {
			t.Errorf("%q: %d %s", tt.path, resp.StatusCode, out)
		}
	}
}
