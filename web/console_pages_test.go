package web_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-im/herald/access"
)

// TestConsoleAppPageInChromium: an admin says who sends, uploads a logo
// and sends a test push to a device of the app, which the simulator
// receives; then finds a subscriber, exports everything held about them and
// erases them.
func TestConsoleAppPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	base, step := b.consoleFor(b.newUser(access.RoleAdmin))
	b.confirmedFCMSubscribers(1)
	var deviceID, subscriberID int64
	var token string
	if err := b.pool.QueryRow(context.Background(), `SELECT id, subscriber_id, token FROM devices WHERE app_id = $1`, b.appID).
		Scan(&deviceID, &subscriberID, &token); err != nil {
		t.Fatal(err)
	}
	// The admin's own phone, marked as a test device on its page.
	if err := chromedp.Do(step(30*time.Second),
		chromedp.Navigate(base+"/console?lang=en#/subscribers/"+strconv.FormatInt(subscriberID, 10)),
		chromedp.WaitVisible(chromedp.ID("test-device-"+strconv.FormatInt(deviceID, 10))),
		// The page's later parts (consent history, conversations) arrive
		// after it and move the buttons: clicked as a person's click lands.
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#test-device-`+strconv.FormatInt(deviceID, 10)+`").click()`),
		chromedp.Poll[chromedp.Void](`document.querySelector("#devices").textContent.includes("test device")`),
	); err != nil {
		t.Fatalf("mark the test device: %v", err)
	}
	logo := filepath.Join(t.TempDir(), "logo.png")
	if err := os.WriteFile(logo, pngBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(step(30*time.Second),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/admin/apps"`),
		chromedp.WaitVisible(chromedp.CSS(`a[href="#/admin/apps/`+b.appSlug+`"]`)),
		chromedp.Click(chromedp.CSS(`a[href="#/admin/apps/`+b.appSlug+`"]`)),
		chromedp.WaitVisible(chromedp.ID("b-company_name")),
		chromedp.SendKeys(chromedp.ID("b-company_name"), "Muster GmbH"),
		chromedp.SendKeys(chromedp.ID("b-imprint_url"), "https://muster.example/impressum"),
		chromedp.Click(chromedp.ID("b-save")),
		chromedp.WaitVisible(chromedp.ID("saved")),
		chromedp.SetUploadFiles(chromedp.ID("logo-file"), []string{logo}),
		chromedp.WaitVisible(chromedp.ID("logo")),
		chromedp.SendKeys(chromedp.ID("test-device"), strconv.FormatInt(deviceID, 10)),
		chromedp.Click(chromedp.ID("test-push")),
		chromedp.WaitVisible(chromedp.ID("test-outcome")),
	); err != nil {
		t.Fatalf("the app's page: %v", err)
	}
	outcome, err := chromedp.Run(step(10*time.Second), chromedp.Text(chromedp.ID("test-outcome")))
	if err != nil || !strings.Contains(outcome, "fcm: delivered") {
		t.Fatalf("test push outcome %q: %v", outcome, err)
	}
	// Confirmation first, then the test.
	got := b.waitReceived("fcm", token, 2)
	if !strings.Contains(string(got[1].Payload), "Herald test") {
		t.Fatalf("the simulator received %s", got[1].Payload)
	}
	app := b.do(http.MethodGet, "/api/v1/apps/"+b.appSlug, b.admin, "", nil).json(t)
	if app["company_name"] != "Muster GmbH" || app["imprint_url"] != "https://muster.example/impressum" || app["logo_url"] == "" {
		t.Fatalf("the app after the page: %v", app)
	}

	// The subscriber's page: export, then erase (after the confirmation).
	// (A change of the hash only: the same page, no load to wait for.)
	if err := chromedp.Do(step(30*time.Second),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/subscribers/`+strconv.FormatInt(subscriberID, 10)+`"`),
		chromedp.WaitVisible(chromedp.ID("export")),
		// The export is a download: the page fetches it and hands it over as a file.
		chromedp.Evaluate[chromedp.Void](`window.heraldDownloads = []; HTMLAnchorElement.prototype.click = function () { window.heraldDownloads.push(this.download); }`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#export").click()`),
		chromedp.Poll[chromedp.Void](`window.heraldDownloads.length === 1 && window.heraldDownloads[0] === "subscriber-`+strconv.FormatInt(subscriberID, 10)+`.json"`),
	); err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := chromedp.Do(step(30*time.Second),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#erase").click()`),
		chromedp.Poll[chromedp.Void](`document.querySelector(".fields") && document.querySelector(".fields").textContent.includes("Erased")`),
	); err != nil {
		t.Fatalf("erase: %v", err)
	}
	if s := b.do(http.MethodGet, fmt.Sprintf("/api/v1/subscribers/%d", subscriberID), b.admin, "", nil).json(t); s["state"] != "erased" {
		t.Fatalf("after erasing: %v", s)
	}
}

// TestConsoleImportInChromium: a marketer imports a CSV file, watches it to
// the end and sees the rows it refused, which it offers as a CSV file.
func TestConsoleImportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	base, step := b.consoleFor(b.newUser(access.RoleMarketer))
	suffix := randomSuffix()
	var csv strings.Builder
	csv.WriteString("external_id,email,lists,consent_source\n")
	for i := range 20 {
		fmt.Fprintf(&csv, "imp-%s-%d,,%s,shop counter\n", suffix, i, b.list)
	}
	csv.WriteString("imp-" + suffix + "-bad,not-an-address,,\n")
	csv.WriteString(",,,\n")
	file := filepath.Join(t.TempDir(), "members.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(step(40*time.Second),
		chromedp.Navigate(base+"/console?lang=en#/lists"),
		chromedp.Click(chromedp.ID("import-link")),
		chromedp.WaitVisible(chromedp.ID("import-file")),
		chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{file}),
		chromedp.Click(chromedp.ID("import-start")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#import-status") && document.querySelector("#import-status").textContent === "Finished"`),
		chromedp.WaitVisible(chromedp.ID("rejected")),
	); err != nil {
		t.Fatalf("import: %v", err)
	}
	got, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[[]string](`[
		document.querySelector("#rows-imported").textContent, document.querySelector("#rows-failed").textContent,
		String(document.querySelectorAll("#rejected tbody tr").length), document.querySelector("#rejected").textContent,
		document.querySelector("#rejected-download").href, document.querySelector("#import-bar").value.toString()]`))
	if err != nil || got[0] != "20" || got[1] != "2" || got[2] != "2" || !strings.Contains(got[3], "not-an-address") ||
		!strings.HasPrefix(got[4], "data:text/csv") || got[5] != "100" {
		t.Fatalf("imported, refused, rows shown, their text, download, bar: %q %v", got, err)
	}
	rejected, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[string](
		`decodeURIComponent(document.querySelector("#rejected-download").href.slice("data:text/csv;charset=utf-8,".length))`))
	if err != nil || !strings.HasPrefix(rejected, "line,field,reason,row\r\n") || !strings.Contains(rejected, "not-an-address") {
		t.Fatalf("the refused rows as CSV: %q %v", rejected, err)
	}
	members := b.do(http.MethodGet, "/api/v1/subscribers?list="+b.list+"&status=confirmed&limit=100", b.marketer, "", nil).json(t)
	if n := len(members["items"].([]any)); n != 20 {
		t.Fatalf("%d confirmed members after the import", n)
	}
}
