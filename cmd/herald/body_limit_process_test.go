package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hostileBody is an endless request body made on the fly, never held in
// memory: prefix, then pattern repeated up to size bytes. sent counts what
// the client took from it, so a test sees how much the server let in.
type hostileBody struct {
	prefix, pattern []byte
	size            int64
	sent            atomic.Int64
}

// repeat is pattern repeated to about 32 KiB, so that Read copies in large
// pieces and the client leaves the CPU to the server.
func repeat(pattern string) []byte {
	return []byte(strings.Repeat(pattern, (32<<10)/len(pattern)))
}

func (b *hostileBody) Read(p []byte) (int, error) {
	at := b.sent.Load()
	if at >= b.size {
		return 0, io.EOF
	}
	if int64(len(p)) > b.size-at {
		p = p[:b.size-at]
	}
	n := 0
	for n < len(p) {
		pos := at + int64(n)
		if pos < int64(len(b.prefix)) {
			n += copy(p[n:], b.prefix[pos:])
			continue
		}
		off := (pos - int64(len(b.prefix))) % int64(len(b.pattern))
		n += copy(p[n:], b.pattern[off:])
	}
	b.sent.Add(int64(n))
	return n, nil
}

// peakRSS is the process's peak resident memory (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestHostileBodiesCostAtMostTheirLimit starts `herald serve` and sends
// eight 200 MB bodies at once to every route that takes a body, public and
// admin, chunked (no declared length) and with a declared length: each must
// get a 413 within seconds, the server must stop reading (the client gets to
// send a few MB at most, what the sockets' buffers hold), and the process's
// peak memory must stay under 300 MB. Before the limits were enforced while
// reading, each such body to /public/v1/subscribe was read whole into
// memory (four of them: 1.99 GB peak). The 413s are then counted on the
// metrics listener (HERALD_METRICS_LISTEN), and the main listener's /metrics
// is not served.
func TestHostileBodiesCostAtMostTheirLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const (
		bodySize    = 200 << 20
		perRoute    = 8
		importLimit = 8 << 20
		jsonLimit   = 64 << 10
		rssBound    = 300 << 20
		// What the client can write beyond what the server reads: the two
		// sockets' buffers on loopback, a few MB each.
		socketSlack = 24 << 20
	)
	bin := heraldBinary(t)
	addr, metricsAddr := freePort(t), freePort(t)
	env := []string{"HERALD_DATABASE_URL=" + freshDatabaseURL(t), "HERALD_SECRET=" + strings.Repeat("b", 40), "HERALD_LISTEN=" + addr,
		"HERALD_MAX_IMPORT_BYTES=" + strconv.Itoa(importLimit), "HERALD_MAX_BODY_BYTES=" + strconv.Itoa(jsonLimit),
		"HERALD_RATE_LIMIT_IP=100000", "HERALD_LOG_LEVEL=warn", "HERALD_METRICS_LISTEN=" + metricsAddr}
	p := start(t, bin, env, "serve", "--api-only")
	base := "http://" + addr
	waitHTTP(t, base+"/readyz", p)

	cmd := exec.Command(bin, "apikey", "create", "--name", "body-limit-probe", "--role", "admin")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	key := strings.TrimSpace(string(out))

	json, form, csv := "application/json", "application/x-www-form-urlencoded", "text/csv"
	type route struct {
		method, path, contentType string
		admin                     bool
		limit                     int64
	}
	routes := []route{
		{"POST", "/public/v1/subscribe", json, false, jsonLimit},
		{"POST", "/public/v1/preferences", json, false, jsonLimit},
		{"POST", "/public/v1/unsubscribe", json, false, jsonLimit},
		{"POST", "/public/v1/campaign-actions", json, false, jsonLimit},
		{"POST", "/confirm/some-token", form, false, jsonLimit},
		{"POST", "/u/some-token", form, false, jsonLimit},
		{"POST", "/preferences/some-token", form, false, jsonLimit},
		{"POST", "/api/v1/lists", json, true, jsonLimit},
		{"PATCH", "/api/v1/lists/news", json, true, jsonLimit},
		{"PUT", "/api/v1/lists/news/subscribers/1", json, true, jsonLimit},
		{"POST", "/api/v1/subscribers", json, true, jsonLimit},
		{"PATCH", "/api/v1/subscribers/1", json, true, jsonLimit},
		{"POST", "/api/v1/campaigns", json, true, jsonLimit},
		{"PATCH", "/api/v1/campaigns/1", json, true, jsonLimit},
		{"POST", "/api/v1/campaigns/1/test-send", json, true, jsonLimit},
		{"POST", "/api/v1/campaigns/1/retry-failed", json, true, jsonLimit},
		{"POST", "/api/v1/apps", json, true, jsonLimit},
		{"PUT", "/api/v1/apps/default/credentials/apns", json, true, jsonLimit},
		{"POST", "/api/v1/api-keys", json, true, jsonLimit},
		{"POST", "/api/v1/imports?filename=big.csv", csv, true, importLimit},
		// Unknown paths and routes that take no body get none either.
		{"POST", "/public/v1/no-such-route", json, false, jsonLimit},
		{"GET", "/api/v1/lists", json, true, jsonLimit},
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: -1}}
	send := func(r route, declared bool) (status int, took time.Duration, sent int64, err error) {
		body := &hostileBody{prefix: []byte(`{"name":"`), pattern: repeat("a"), size: bodySize}
		switch r.contentType {
		case csv:
			body.prefix, body.pattern = []byte("external_id,email\n"), repeat("someone-0001,someone@example.com\n")
		case form:
			body.prefix = []byte("list=")
		}
		req, err := http.NewRequest(r.method, base+r.path, body)
		if err != nil {
			return 0, 0, 0, err
		}
		if declared {
			req.ContentLength = bodySize
		} else {
			req.TransferEncoding = []string{"chunked"}
		}
		req.Header.Set("Content-Type", r.contentType)
		if r.admin {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, time.Since(began), body.sent.Load(), err
		}
		took = time.Since(began)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, took, body.sent.Load(), nil
	}

	began := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var most int64
	cut := 0
	for _, r := range routes {
		for i := range perRoute {
			declared := i%4 == 3 // a quarter with Content-Length: 200 MB, the rest chunked
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, took, sent, err := send(r, declared)
				mu.Lock()
				defer mu.Unlock()
				most = max(most, sent)
				switch {
				case err != nil && connectionCut(err) && sent <= r.limit+socketSlack && took <= 10*time.Second:
					// The server stopped reading, answered 413 and closed;
					// a client still writing can see the close before the
					// answer. What matters held: it read no further.
					cut++
				case err != nil:
					failures = append(failures, fmt.Sprintf("%s %s (declared %v): %v after %s, %d bytes sent", r.method, r.path, declared, err, took, sent))
				case status != http.StatusRequestEntityTooLarge:
					failures = append(failures, fmt.Sprintf("%s %s (declared %v): %d, want 413", r.method, r.path, declared, status))
				case took > 10*time.Second:
					failures = append(failures, fmt.Sprintf("%s %s (declared %v): 413 after %s", r.method, r.path, declared, took))
				case sent > r.limit+socketSlack:
					failures = append(failures, fmt.Sprintf("%s %s (declared %v): the server read on: %d MB sent", r.method, r.path, declared, sent>>20))
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(began)
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("%d requests of %d MB in %s (%d saw the connection closed before the 413); at most %d KB of one sent; peak RSS %d MB",
		len(routes)*perRoute, bodySize>>20, elapsed.Round(time.Millisecond), cut, most>>10, rss>>20)
	for _, f := range failures {
		t.Error(f)
	}
	if rss > rssBound {
		t.Errorf("peak RSS %d MB, want under %d MB", rss>>20, rssBound>>20)
	}
	// The server still serves.
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the bodies: %v %v\n%s", resp, err, p.out)
	}
	resp.Body.Close()
	// And counted the 413s, which HERALD_METRICS_LISTEN serves, not the
	// main listener.
	resp, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(metrics), `status="413"`) {
		t.Fatalf("metrics listener: %d %.300s", resp.StatusCode, metrics)
	}
	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("main listener's /metrics with HERALD_METRICS_LISTEN set: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// connectionCut reports whether err is the server closing the connection
// under a client that was still writing.
func connectionCut(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
