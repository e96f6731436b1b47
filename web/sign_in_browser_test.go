package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/herald-im/herald/access"
)

// newChromium starts Debian's Chromium under chromedp for one test, and
// saves a screenshot of the page if the test fails (to HERALD_SCREENSHOTS,
// or the system's temporary directory).
func newChromium(t *testing.T) context.Context {
	t.Helper()
	binary, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("HERALD_SKIP_BROWSER") != "" {
			t.Skip("HERALD_SKIP_BROWSER set and chromium not installed")
		}
		t.Fatal("chromium not found: run `make test`, which installs Debian's chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(binary), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// The browser starts with the first action, on a context without a
	// deadline (one would stop the browser); each step then has its own.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			shotCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if body, err := chromedp.Run(shotCtx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)); err == nil {
				t.Logf("the page at the failure: %s", body)
			}
			if png, err := chromedp.Run(shotCtx, chromedp.FullScreenshot(90)); err == nil {
				dir := os.Getenv("HERALD_SCREENSHOTS")
				if dir == "" {
					dir = filepath.Join(os.TempDir(), "herald-screenshots")
				}
				if err := os.MkdirAll(dir, 0o755); err == nil {
					name := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".png")
					if err := os.WriteFile(name, png, 0o644); err == nil {
						t.Logf("screenshot of the failure: %s", name)
					}
				}
			}
			cancel()
		}
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// TestSignInInChromium: a person signs in through the page, sets up a
// second factor, signs out, and signs in again with a code, in Chromium.
func TestSignInInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	// An app of its own: the shared one is shut down by whichever test
	// serving it ends first.
	base := "http://" + serve(t, b.appWith(nil))
	u := b.newUser(access.RoleAdmin)
	browser := newChromium(t)
	// step bounds one step of the test.
	step := func() context.Context {
		ctx, cancel := context.WithTimeout(browser, 20*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	id := func(name string) chromedp.ID { return chromedp.ID(name) }
	text := func(name string) string {
		t.Helper()
		v, err := chromedp.Run(step(), chromedp.Text(id(name)))
		if err != nil {
			t.Fatalf("text of #%s: %v", name, err)
		}
		return strings.TrimSpace(v)
	}
	// Not signed in: the account page sends the browser to sign in.
	if err := chromedp.Do(step(),
		chromedp.Navigate(base+"/account?lang=en"),
		chromedp.WaitVisible(id("email")),
		chromedp.SendKeys(id("email"), u.Email),
		chromedp.SendKeys(id("password"), testPassword),
		chromedp.Click(id("submit")),
		chromedp.WaitVisible(id("totp-status")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if name := text("name"); name != u.Name {
		t.Fatalf("signed in as %q", name)
	}
	if err := chromedp.Do(step(), chromedp.Click(id("setup-totp")), chromedp.WaitVisible(id("totp-secret"))); err != nil {
		t.Fatalf("open the TOTP page: %v", err)
	}
	secret := text("totp-secret")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(step(),
		chromedp.SendKeys(id("code"), code),
		chromedp.Click(id("submit")),
		chromedp.WaitVisible(id("recovery-codes")),
	); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	codes, err := chromedp.Run(step(), chromedp.Evaluate[[]string](`[...document.querySelectorAll("#recovery-codes code")].map(e => e.textContent)`))
	if err != nil || len(codes) < 8 {
		t.Fatalf("recovery codes %v: %v", codes, err)
	}
	if err := chromedp.Do(step(), chromedp.Click(id("done")), chromedp.WaitVisible(id("totp-status"))); err != nil {
		t.Fatalf("back to the account: %v", err)
	}
	if status := text("totp-status"); !strings.HasPrefix(status, "On") {
		t.Fatalf("TOTP status %q", status)
	}
	if err := chromedp.Do(step(), chromedp.Click(id("sign-out")), chromedp.WaitVisible(id("heading"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if heading := text("heading"); heading != "You are signed out." {
		t.Fatalf("after sign-out: %q", heading)
	}

	// Signed out for real: the account page asks to sign in, and signing in
	// now takes a code (the next one: the enrolment's is spent).
	next, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(step(),
		chromedp.Navigate(base+"/account?lang=de"),
		chromedp.WaitVisible(id("email")),
	); err != nil {
		t.Fatalf("account page after sign-out: %v", err)
	}
	title, err := chromedp.Run(step(), chromedp.Text(chromedp.CSS("h1")))
	if err != nil || title != "Bei Herald anmelden" {
		t.Fatalf("German sign-in page: %q %v", title, err)
	}
	if err := chromedp.Do(step(),
		chromedp.SendKeys(id("email"), u.Email),
		chromedp.SendKeys(id("password"), testPassword),
		chromedp.Click(id("submit")),
		chromedp.WaitVisible(id("code")),
		chromedp.SendKeys(id("code"), next),
		chromedp.Click(id("submit")),
		chromedp.WaitVisible(id("totp-status")),
	); err != nil {
		t.Fatalf("sign in with a code: %v", err)
	}
	if status := text("totp-status"); !strings.HasPrefix(status, "An") {
		t.Fatalf("German account page: %q", status)
	}
}
