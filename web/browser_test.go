package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// webDriver is the little of the W3C WebDriver protocol the browser test
// needs, spoken to Debian's chromedriver.
type webDriver struct {
	t       *testing.T
	base    string
	session string
}

func startChromium(t *testing.T) *webDriver {
	t.Helper()
	driver, err := exec.LookPath("chromedriver")
	if err != nil {
		if os.Getenv("HERALD_SKIP_BROWSER") != "" {
			t.Skip("HERALD_SKIP_BROWSER set and chromedriver not installed")
		}
		t.Fatal("chromedriver not found: run `make test`, which installs Debian's chromium and chromium-driver")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	wd := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(wd.base + "/status"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chromedriver did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	binary := "/usr/bin/chromium"
	if p, err := exec.LookPath("chromium"); err == nil {
		binary = p
	}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	wd.call("POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": binary, "args": []string{
			"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--window-size=900,900",
		}},
	}}}, &created)
	wd.session = created.SessionID
	t.Cleanup(func() { wd.call("DELETE", "", nil, nil) })
	return wd
}

func (wd *webDriver) call(method, path string, body any, out any) {
	wd.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	url := wd.base + path
	if wd.session != "" {
		url = wd.base + "/session/" + wd.session + path
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		wd.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		wd.t.Fatalf("webdriver %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		var env struct {
			Value json.RawMessage `json:"value"`
		}
		json.Unmarshal(raw, &env)
		if err := json.Unmarshal(env.Value, out); err != nil {
			wd.t.Fatalf("webdriver %s: %v in %s", path, err, raw)
		}
	}
}

func (wd *webDriver) open(url string) { wd.call("POST", "/url", map[string]string{"url": url}, nil) }

func (wd *webDriver) run(script string, args ...any) json.RawMessage {
	var out json.RawMessage
	if args == nil {
		args = []any{}
	}
	wd.call("POST", "/execute/async", map[string]any{"script": script, "args": args}, &out)
	return out
}

func (wd *webDriver) click(css string) {
	var el map[string]string
	wd.call("POST", "/element", map[string]string{"using": "css selector", "value": css}, &el)
	for _, id := range el {
		wd.call("POST", "/element/"+id+"/click", map[string]any{}, nil)
	}
}

func (wd *webDriver) text(css string) string {
	var s string
	raw := wd.run(`const done = arguments[arguments.length-1]; const e = document.querySelector(arguments[0]); done(e ? e.textContent : "");`, css)
	json.Unmarshal(raw, &s)
	return s
}

func (wd *webDriver) screenshot(name string) {
	var b64 string
	wd.call("GET", "/screenshot", nil, &b64)
	if dir := os.Getenv("HERALD_SCREENSHOTS"); dir != "" {
		raw, _ := decodeStd(b64)
		os.WriteFile(filepath.Join(dir, name), raw, 0o644)
	}
}

// TestOptInPageInChromium opens the hosted opt-in page in Debian's Chromium:
// the service worker registers for real, the page subscribes, Herald sends
// the confirmation (decrypted by the simulator), and the confirm page's
// button confirms. With no network here, Chromium cannot reach its vendor's
// push service, so PushManager.subscribe alone returns a simulator-minted
// subscription, exactly as the browser would hand one out.
func TestOptInPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.app.Listener(ln)
	base := "http://" + ln.Addr().String()
	wd := startChromium(t)

	wd.open(base + "/l/" + b.list + "?app=" + b.appSlug)
	if h := wd.text("#heading"); !strings.HasPrefix(h, "Test list") {
		t.Fatalf("heading %q", h)
	}
	if c := wd.text("#consent"); !strings.Contains(c, "I agree") {
		t.Fatalf("consent text %q", c)
	}
	sub := b.webPushSubscription()
	wd.run(`const done = arguments[arguments.length-1]; const sub = arguments[0];
		Notification.requestPermission = async () => "granted";
		PushManager.prototype.subscribe = async function (opts) {
			window.__askedKey = btoa(String.fromCharCode(...new Uint8Array(opts.applicationServerKey)));
			return { toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh: sub.p256dh, auth: sub.auth } }) };
		};
		done(true);`, map[string]string{"endpoint": sub.Endpoint, "p256dh": sub.P256dh, "auth": sub.Auth})
	wd.click("#subscribe")

	var result string
	deadline := time.Now().Add(20 * time.Second)
	for result == "" || result == `""` {
		raw := wd.run(`const done = arguments[arguments.length-1]; done(document.getElementById("herald-optin").dataset.result || "");`)
		json.Unmarshal(raw, &result)
		if time.Now().After(deadline) {
			t.Fatalf("page did not finish; status %q", wd.text("#status"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	wd.screenshot("optin.png")
	if result != "pending" || !strings.Contains(wd.text("#status"), "confirm") {
		t.Fatalf("page result %q, status %q", result, wd.text("#status"))
	}
	var askedKey string
	json.Unmarshal(wd.run(`const done = arguments[arguments.length-1]; done(window.__askedKey || "");`), &askedKey)
	if raw, _ := decodeStd(askedKey); base64.RawURLEncoding.EncodeToString(raw) != b.vapidKey {
		t.Fatalf("page asked for applicationServerKey %q, the app's VAPID key is %q", askedKey, b.vapidKey)
	}
	var swActive bool
	json.Unmarshal(wd.run(`const done = arguments[arguments.length-1];
		navigator.serviceWorker.getRegistration("/").then(r => done(!!(r && r.active && r.active.scriptURL.endsWith("/sw.js"))));`), &swActive)
	if !swActive {
		t.Fatal("service worker is not active")
	}

	got := b.waitReceived("webpush", sub.Endpoint, 1)
	var msg struct {
		URL string `json:"url"`
	}
	json.Unmarshal(got[0].Payload, &msg)
	wd.open(base + b.pathOf(msg.URL))
	wd.click("#submit")
	deadline = time.Now().Add(10 * time.Second)
	for wd.text("#heading") != "You are subscribed" {
		if time.Now().After(deadline) {
			t.Fatalf("after confirming: %q", wd.text("#heading"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	wd.screenshot("confirmed.png")
	var subID int64
	b.pool.QueryRow(context.Background(), `SELECT subscriber_id FROM devices WHERE token = $1`, sub.Endpoint).Scan(&subID)
	if st := b.membership(subID); st != "confirmed" {
		t.Fatalf("membership %s", st)
	}
}
