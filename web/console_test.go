package web_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/users"
)

// docsScreenshot saves the page as docs/<name>.png when
// HERALD_DOCS_SCREENSHOTS names the docs directory (how the README's
// pictures are made: HERALD_DOCS_SCREENSHOTS=$PWD/docs go test ./web -run
// TestConsole).
func docsScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("HERALD_DOCS_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleTexts: every console text is in English and German.
func TestConsoleTexts(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("static/console/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	block := func(lang, next string) map[string]bool {
		start := strings.Index(text, "\n  "+lang+": {")
		end := strings.Index(text[start:], next)
		if start < 0 || end < 0 {
			t.Fatalf("no %s block in i18n.js", lang)
		}
		keys := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)(?:^|[{,]\s*)"?([A-Za-z_-]+)"?:\s*"`).FindAllStringSubmatch(text[start+len(lang)+6:start+end], -1) {
			keys[m[1]] = true
		}
		return keys
	}
	en, de := block("en", "\n  },"), block("de", "\n  },")
	if len(en) < 20 {
		t.Fatalf("only %d English texts found: the test no longer reads i18n.js", len(en))
	}
	for k := range en {
		if !de[k] {
			t.Errorf("%s has no German text", k)
		}
	}
	for k := range de {
		if !en[k] {
			t.Errorf("%s has no English text", k)
		}
	}
}

// TestConsoleCampaignPageInChromium: a marketer opens a campaign in the
// console before its time and watches it send and finish, without
// reloading; the page reads only the campaign and its counters.
func TestConsoleCampaignPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	base, step := b.consoleFor(b.newUser(access.RoleMarketer))

	const devices = 3
	b.confirmedFCMSubscribers(devices)
	at := time.Now().Add(4 * time.Second).UTC().Format(time.RFC3339Nano)
	create := b.postJSON("/api/v1/campaigns", b.marketer, map[string]any{
		"app": b.appSlug, "name": "Autumn sale",
		"content":  map[string]any{"title": "Autumn sale", "body": "30% off", "url": "https://shop.example.com/autumn"},
		"audience": map[string]any{"lists": []string{b.list}}, "schedule": map[string]any{"mode": "at", "at": at},
	})
	if create.status != http.StatusCreated {
		t.Fatalf("create: %d %s", create.status, create.body)
	}
	id := int64(create.json(t)["id"].(float64))
	if r := b.postJSON(fmt.Sprintf("/api/v1/campaigns/%d/schedule", id), b.marketer, nil); r.status != http.StatusOK {
		t.Fatalf("schedule: %d %s", r.status, r.body)
	}

	// The list, then the campaign, still scheduled.
	if err := chromedp.Do(step(20*time.Second), chromedp.Navigate(base+"/console?lang=en#/campaigns"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="#/campaigns/`+fmt.Sprint(id)+`"]`)),
		chromedp.Click(chromedp.CSS(`a[href="#/campaigns/`+fmt.Sprint(id)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#campaign-status`)),
		// A mark that a reload would wipe.
		chromedp.Evaluate[chromedp.Void](`window.heraldNoReload = true`),
	); err != nil {
		t.Fatalf("open the campaign: %v", err)
	}
	status, err := chromedp.Run(step(10*time.Second), chromedp.Text(chromedp.CSS(`#campaign-status`)))
	if err != nil || (status != "Scheduled" && status != "Sending") {
		t.Fatalf("status before its time: %q %v", status, err)
	}
	// It sends and finishes on the open page.
	if err := chromedp.Do(step(60*time.Second),
		chromedp.Poll[chromedp.Void](`document.querySelector("#campaign-status").textContent === "Finished"`),
	); err != nil {
		t.Fatalf("the page did not show the campaign finished: %v", err)
	}
	got, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[[]string](`[
		document.querySelector("#figure-delivered").textContent, document.querySelector("#sent").textContent,
		String(window.heraldNoReload)]`))
	if err != nil || got[0] != fmt.Sprint(devices) || got[1] != fmt.Sprint(devices) || got[2] != "true" {
		t.Fatalf("delivered, sent, not reloaded: %v %v", got, err)
	}
	// The controls follow the status: a finished campaign without failures
	// offers none.
	buttons, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[int](`document.querySelectorAll(".actions button").length`))
	if err != nil || buttons != 0 {
		t.Fatalf("buttons on a finished campaign: %d %v", buttons, err)
	}
}

// TestConsoleSubscribersInChromium: an agent finds a subscriber by external
// id and opens them; a marketer pages through a list's members.
func TestConsoleSubscribersInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	// An app of its own: the shared one is shut down by whichever test
	// serving it ends first.
	base := "http://" + serve(t, b.appWith(nil))
	var exts []string
	for range 3 {
		ext := "browse-" + randomSuffix()
		exts = append(exts, ext)
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext,
			"identity_hmac": optin.IdentityHMAC(b.identity, ext), "device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}})
		if res.status != http.StatusAccepted {
			t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
	}
	agentSID, _ := b.sessionFor(b.newUser(access.RoleAgent))
	stepFor := browserSignedIn(t, base, agentSID)
	step := func() context.Context { return stepFor(20 * time.Second) }

	if err := chromedp.Do(step(), chromedp.Navigate(base+"/console?lang=en#/subscribers"),
		chromedp.WaitVisible(chromedp.CSS(`#q`)),
		chromedp.SendKeys(chromedp.CSS(`#q`), exts[1]),
		chromedp.Click(chromedp.CSS(`form.search button`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#subscribers tbody tr").length === 1`),
		chromedp.Click(chromedp.CSS(`#subscribers tbody a`)),
		chromedp.WaitVisible(chromedp.CSS(`#memberships`)),
	); err != nil {
		t.Fatalf("find and open a subscriber: %v", err)
	}
	got, err := chromedp.Run(step(), chromedp.Evaluate[[]string](`[document.querySelector("#subscriber-name").textContent,
		document.querySelector("#memberships").textContent, document.querySelector("#devices").textContent,
		String(document.querySelectorAll('nav a[href="#/campaigns"]').length)]`))
	if err != nil || got[0] != exts[1] || !strings.Contains(got[1], "waiting for confirmation") || !strings.Contains(got[2], "fcm") || got[3] != "0" {
		t.Fatalf("the subscriber's page as an agent: %v %v", got, err)
	}

	marketerSID, _ := b.sessionFor(b.newUser(access.RoleMarketer))
	signIn(t, step(), base, marketerSID)
	if err := chromedp.Do(step(), chromedp.Navigate(base+"/console?lang=de#/lists"),
		chromedp.WaitVisible(chromedp.CSS(`#lists a[href="#/subscribers?list=`+b.list+`"]`)),
		chromedp.Click(chromedp.CSS(`#lists a[href="#/subscribers?list=`+b.list+`"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#subscribers tbody tr").length === 3`),
	); err != nil {
		t.Fatalf("a list's members: %v", err)
	}
	heading, err := chromedp.Run(step(), chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil || !strings.HasPrefix(heading, "Abonnenten") {
		t.Fatalf("German heading: %q %v", heading, err)
	}
	// A marketer sees a subscriber's consent history.
	if err := chromedp.Do(step(), chromedp.Click(chromedp.CSS(`#subscribers tbody a`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#consent") && document.querySelector("#consent").textContent.includes("opt_in_request")`),
	); err != nil {
		t.Fatalf("consent history: %v", err)
	}
}

// TestConsoleComposerInChromium: a marketer writes a campaign with the
// preview beside it, saves the draft, sees its audience, sends it and
// watches it finish on the same page.
func TestConsoleComposerInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	const devices = 2
	b.confirmedFCMSubscribers(devices)
	base, step := b.consoleFor(b.newUser(access.RoleMarketer))
	if err := chromedp.Do(step(20*time.Second), chromedp.Navigate(base+"/console?lang=en#/campaigns"),
		chromedp.Click(chromedp.CSS(`#new-campaign`)),
		chromedp.WaitVisible(chromedp.CSS(`#c-name`)),
		chromedp.SendKeys(chromedp.CSS(`#c-name`), "Winter sale"),
		// The app field says "default"; this test's app has another slug.
		chromedp.Evaluate[chromedp.Void](`(() => { const el = document.querySelector("#c-app"); el.value = "`+b.appSlug+`";
			el.dispatchEvent(new Event("input", {bubbles: true})); })()`),
		chromedp.SendKeys(chromedp.CSS(`#c-title`), "Winter sale"),
		chromedp.SendKeys(chromedp.CSS(`#c-body`), "Everything warm, 25% off"),
		chromedp.Click(chromedp.CSS(`#c-lists input[value="`+b.list+`"]`)),
		// The live count: both devices, then none once a segment asks for
		// an attribute nobody has, then both again.
		chromedp.Poll[chromedp.Void](`document.querySelector("#c-count-devices") && document.querySelector("#c-count-devices").textContent === "`+fmt.Sprint(devices)+`"`),
		chromedp.Click(chromedp.ID("c-add-condition")),
		chromedp.SendKeys(chromedp.CSS(`#c-segment input[aria-label="Attribute"]`), "plan"),
		chromedp.SendKeys(chromedp.CSS(`#c-segment input[aria-label="Value"]`), "pro"),
		chromedp.Poll[chromedp.Void](`document.querySelector("#c-count-devices") && document.querySelector("#c-count-devices").textContent === "0"`),
		chromedp.Click(chromedp.CSS(`#c-segment .row input[type="checkbox"]`)), // not
		chromedp.Poll[chromedp.Void](`document.querySelector("#c-count-devices") && document.querySelector("#c-count-devices").textContent === "`+fmt.Sprint(devices)+`"`),
		// A button, shown in the preview.
		chromedp.Click(chromedp.ID("c-add-button")),
		chromedp.SendKeys(chromedp.CSS(`#c-actions input[aria-label="Label"]`), "Shop now"),
		chromedp.SendKeys(chromedp.CSS(`#c-actions input[type="url"]`), "https://shop.example.com/winter"),
		chromedp.Poll[chromedp.Void](`document.querySelector("#preview-android .nactions").textContent.includes("Shop now")`),
	); err != nil {
		t.Fatalf("compose: %v", err)
	}
	preview, err := chromedp.Run(step(10*time.Second), chromedp.Text(chromedp.CSS(`#preview-ios`)))
	if err != nil || !strings.Contains(preview, "Winter sale") || !strings.Contains(preview, "Everything warm, 25% off") {
		t.Fatalf("the preview does not follow the text: %q %v", preview, err)
	}
	// German and French text, each previewed in its language.
	if err := chromedp.Do(step(20*time.Second),
		chromedp.SendKeys(chromedp.ID("c-title-0"), "Winterschlussverkauf"),
		chromedp.SendKeys(chromedp.ID("c-body-0"), "Alles Warme, 25 % günstiger"),
		chromedp.Click(chromedp.ID("c-add-language")),
		chromedp.SendKeys(chromedp.ID("c-locale-1"), "fr"),
		chromedp.SendKeys(chromedp.ID("c-title-1"), "Soldes d'hiver"),
		chromedp.Evaluate[chromedp.Void](`(() => { const el = document.querySelector("#c-preview-language"); el.value = "fr";
			el.dispatchEvent(new Event("change", {bubbles: true})); })()`),
		chromedp.Poll[chromedp.Void](`document.querySelector("#preview-ios").textContent.includes("Soldes d'hiver") &&
			document.querySelector("#preview-ios").textContent.includes("Everything warm")`),
	); err != nil {
		t.Fatalf("languages: %v", err)
	}
	if err := chromedp.Do(step(20*time.Second),
		chromedp.Click(chromedp.CSS(`#c-save`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#campaign-status") && document.querySelector("#campaign-status").textContent === "Draft"`),
		chromedp.Poll[chromedp.Void](`document.querySelector("#audience-devices") && document.querySelector("#audience-devices").textContent === "`+fmt.Sprint(devices)+`"`),
	); err != nil {
		t.Fatalf("save the draft: %v", err)
	}
	campaignID, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[string](`location.hash.split("/").pop()`))
	if err != nil {
		t.Fatal(err)
	}
	saved := b.do(http.MethodGet, "/api/v1/campaigns/"+campaignID, b.marketer, "", nil).json(t)
	variants, _ := saved["content"].(map[string]any)["variants"].(map[string]any)
	if de, _ := variants["de"].(map[string]any); de == nil || de["title"] != "Winterschlussverkauf" || de["body"] != "Alles Warme, 25 % günstiger" {
		t.Fatalf("saved variants %v", variants)
	}
	if fr, _ := variants["fr"].(map[string]any); fr == nil || fr["title"] != "Soldes d'hiver" || fr["body"] != "Everything warm, 25% off" {
		t.Fatalf("saved variants %v", variants)
	}
	// A test send to one of them first.
	first := b.do(http.MethodGet, "/api/v1/subscribers?list="+b.list+"&limit=1", b.marketer, "", nil).json(t)["items"].([]any)[0].(map[string]any)
	if err := chromedp.Do(step(20*time.Second),
		chromedp.SendKeys(chromedp.ID("test-to"), first["external_id"].(string)),
		chromedp.Click(chromedp.ID("test-add")),
		chromedp.WaitVisible(chromedp.ID("test-send-button")),
		chromedp.Click(chromedp.ID("test-send-button")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#test-results") && document.querySelector("#test-results").textContent.includes("delivered")`),
		chromedp.Evaluate[chromedp.Void](`window.heraldNoReload = true`),
		chromedp.Click(chromedp.CSS(`#action-schedule`)),
	); err != nil {
		t.Fatalf("test send, then send: %v", err)
	}
	if err := chromedp.Do(step(60*time.Second),
		chromedp.Poll[chromedp.Void](`document.querySelector("#campaign-status").textContent === "Finished"`),
	); err != nil {
		t.Fatalf("the page did not show the campaign finished: %v", err)
	}
	got, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[[]string](`[
		document.querySelector("#figure-delivered").textContent, String(window.heraldNoReload)]`))
	if err != nil || got[0] != fmt.Sprint(devices) || got[1] != "true" {
		t.Fatalf("delivered, not reloaded: %v %v", got, err)
	}
	// The chart of deliveries over time, from the timeline's counters.
	if err := chromedp.Do(step(20*time.Second),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#timeline rect").length > 0 && document.querySelector("#timeline").dataset.delivered === "`+fmt.Sprint(devices)+`"`),
	); err != nil {
		t.Fatalf("the chart: %v", err)
	}
	docsScreenshot(t, step(20*time.Second), "console-campaign")
}

// TestConsoleInboxInChromium: a subscriber writes; an agent with the inbox
// open sees it arrive without reloading, picks it up and answers; the
// answer reaches the subscriber.
func TestConsoleInboxInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	agent := b.newUser(access.RoleAgent)
	base, step := b.consoleFor(agent)
	if err := chromedp.Do(step(20*time.Second),
		chromedp.Navigate(base+"/console?lang=en#/inbox"),
		chromedp.WaitVisible(chromedp.CSS(`#view-unassigned`)),
		chromedp.Evaluate[chromedp.Void](`window.heraldNoReload = true`),
	); err != nil {
		t.Fatalf("open the inbox: %v", err)
	}
	question := "Where is my order " + randomSuffix() + "?"
	token, _, _ := b.subscriberSession()
	if res := b.postJSON("/public/v1/conversation/messages", token, map[string]any{"body": question}); res.status != http.StatusCreated {
		t.Fatalf("the subscriber writes: %d %s", res.status, res.body)
	}
	if err := chromedp.Do(step(20*time.Second),
		chromedp.Poll[chromedp.Void](`document.querySelector("#conversations") && document.querySelector("#conversations").textContent.includes(`+strconv.Quote(question)+`) && window.heraldNoReload === true`),
		// Other tests' conversations may be listed too: this one's.
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#conversations a")].find((a) => a.textContent.includes(`+strconv.Quote(question)+`)).click()`),
		chromedp.WaitVisible(chromedp.CSS(`#pick-up`)),
		chromedp.Click(chromedp.CSS(`#pick-up`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#assignee").textContent === `+strconv.Quote(agent.Name)),
		chromedp.SendKeys(chromedp.CSS(`#reply`), "It left our warehouse this morning."),
		chromedp.Click(chromedp.CSS(`#send`)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#messages .message.agent:not(.pending)")].some((m) => m.textContent.includes("It left our warehouse"))`),
	); err != nil {
		t.Fatalf("see the message arrive, pick it up, answer: %v", err)
	}
	// A reply with a button under it: a link the subscriber can open.
	if err := chromedp.Do(step(20*time.Second),
		chromedp.Click(chromedp.ID("add-reply-button")),
		chromedp.SendKeys(chromedp.CSS(`.reply input[aria-label="Label"]`), "Track it"),
		chromedp.SendKeys(chromedp.CSS(`.reply input[type="url"]`), "https://shop.example.com/track/42"),
		chromedp.SendKeys(chromedp.ID("reply"), "Here is the tracking page."),
		chromedp.Click(chromedp.ID("send")),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#messages .message.agent:not(.pending)")].some((m) => m.textContent.includes("tracking page"))`),
	); err != nil {
		t.Fatalf("a reply with a button: %v", err)
	}
	// The subscriber types: the agent sees it.
	if res := b.postJSON("/public/v1/conversation/typing", token, nil); res.status != http.StatusNoContent {
		t.Fatalf("the subscriber types: %d %s", res.status, res.body)
	}
	if err := chromedp.Do(step(20*time.Second), chromedp.WaitVisible(chromedp.CSS(`#subscriber-typing`))); err != nil {
		t.Fatalf("no typing mark: %v", err)
	}
	// The subscriber sends a picture: it shows in place, live.
	up := b.do(http.MethodPost, "/public/v1/conversation/attachments", token, "image/png", pngBytes)
	if up.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", up.status, up.body)
	}
	if res := b.postJSON("/public/v1/conversation/messages", token, map[string]any{"body": "Here is the label",
		"attachment_id": up.json(t)["id"]}); res.status != http.StatusCreated {
		t.Fatalf("send the picture: %d %s", res.status, res.body)
	}
	if err := chromedp.Do(step(20*time.Second),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#messages img.attachment")].some((img) => img.src.includes("/public/v1/attachments/"))`),
	); err != nil {
		t.Fatalf("the picture in the conversation: %v", err)
	}
	// Handed to a team, the conversation is in the team's view.
	team := b.postJSON("/api/v1/teams", b.admin, map[string]any{"name": "Billing " + randomSuffix()})
	if team.status != http.StatusCreated {
		t.Fatalf("team: %d %s", team.status, team.body)
	}
	teamID := fmt.Sprint(int64(team.json(t)["id"].(float64)))
	conversation, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[string](`location.hash`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(step(20*time.Second),
		// The teams are read as a conversation opens: this one is new.
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/inbox"`),
		chromedp.WaitVisible(chromedp.CSS(`#view-team-`+teamID)),
		chromedp.Evaluate[chromedp.Void](`location.hash = `+strconv.Quote(conversation)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#assign option[value="team:`+teamID+`"]') !== null`),
		chromedp.Evaluate[chromedp.Void](`(() => { const el = document.querySelector("#assign"); el.value = "team:`+teamID+`";
			el.dispatchEvent(new Event("change", {bubbles: true})); })()`),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/inbox?view=team-`+teamID+`"`),
		chromedp.WaitVisible(chromedp.CSS(`#view-team-`+teamID+`[aria-selected="true"]`)),
		// The team's tab counts its open conversation.
		chromedp.Poll[chromedp.Void](`document.querySelector("#view-team-`+teamID+` .count").textContent === "1"`),
		chromedp.Poll[chromedp.Void](`document.querySelector("#conversations") && document.querySelector("#conversations").textContent.includes("Here is the label")`),
		chromedp.Evaluate[chromedp.Void](`location.hash = `+strconv.Quote(conversation)),
		chromedp.WaitVisible(chromedp.ID("labels")),
	); err != nil {
		t.Fatalf("the team's view: %v", err)
	}
	// Available for new conversations, as the server keeps it.
	if err := chromedp.Do(step(20*time.Second), chromedp.Navigate(base+"/console?lang=en#/inbox"),
		chromedp.WaitVisible(chromedp.CSS(`#availability input`)),
		chromedp.Click(chromedp.CSS(`#availability input`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#availability input").checked === true`),
	); err != nil {
		t.Fatalf("availability: %v", err)
	}
	// The box changes at the click; the server's answer follows.
	waitFor(t, func() bool {
		for _, a := range b.do(http.MethodGet, "/api/v1/agents", b.admin, "", nil).json(t)["items"].([]any) {
			if a := a.(map[string]any); int64(a["user_id"].(float64)) == agent.ID {
				return a["available"] == true
			}
		}
		return false
	})
	if err := chromedp.Do(step(20*time.Second), chromedp.Evaluate[chromedp.Void](`history.back()`),
		chromedp.WaitVisible(chromedp.CSS(`#labels`))); err != nil {
		t.Fatalf("back to the conversation: %v", err)
	}
	// Labels, then snoozed until tomorrow.
	if err := chromedp.Do(step(20*time.Second),
		chromedp.SendKeys(chromedp.CSS(`#labels`), "vip, billing"),
		chromedp.Click(chromedp.CSS(`#save-labels`)),
		// The server keeps them sorted: the page shows what it saved.
		chromedp.Poll[chromedp.Void](`document.querySelector("#labels").value === "billing, vip"`),
		chromedp.Click(chromedp.CSS(`#snooze`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#conversation-status").textContent === "Snoozed"`),
	); err != nil {
		t.Fatalf("label and snooze: %v", err)
	}
	docsScreenshot(t, step(20*time.Second), "console-inbox")
	// The page's event stream holds a connection the server's shutdown
	// would wait for.
	if err := chromedp.Do(step(10*time.Second), chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	res := b.do(http.MethodGet, "/public/v1/conversation/messages", token, "", nil)
	if res.status != http.StatusOK || !strings.Contains(string(res.body), "It left our warehouse this morning.") ||
		!strings.Contains(string(res.body), agent.Name) || !strings.Contains(string(res.body), `"label":"Track it"`) ||
		!strings.Contains(string(res.body), `"url":"https://shop.example.com/track/42"`) {
		t.Fatalf("the subscriber's history: %d %s", res.status, res.body)
	}
}

// confirmedFCMSubscribers subscribes n people to b.list, each with an FCM
// device, and confirms them once their confirmation push has gone (to
// confirm before would, rightly, cancel it).
func (b *testBundle) confirmedFCMSubscribers(n int) {
	b.t.Helper()
	for range n {
		token := b.sim.NewFCMToken()
		ext := "confirmed-" + randomSuffix()
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext,
			"identity_hmac": optin.IdentityHMAC(b.identity, ext), "device": map[string]any{"platform": "fcm", "token": token}})
		if res.status != http.StatusAccepted {
			b.t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
		b.waitReceived("fcm", token, 1)
		list := b.do(http.MethodGet, "/api/v1/subscribers?external_id="+ext, b.admin, "", nil).json(b.t)
		subID := int64(list["items"].([]any)[0].(map[string]any)["id"].(float64))
		b.do(http.MethodPut, fmt.Sprintf("/api/v1/lists/%s/subscribers/%d", b.list, subID), b.admin, "application/json", []byte(`{"status":"confirmed"}`))
	}
}

// browserSignedIn starts Chromium with the session sid at base (the
// cookie a sign-in would have set) and returns step, which bounds one step
// of the test.
func browserSignedIn(t *testing.T, base, sid string) (step func(time.Duration) context.Context) {
	t.Helper()
	browser := newChromium(t)
	step = func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(browser, d)
		t.Cleanup(cancel)
		return c
	}
	signIn(t, step(20*time.Second), base, sid)
	return step
}

// consoleFor serves an app of its own (the shared one is shut down by
// whichever test serving it ends first) and starts Chromium signed in as u
// there; step bounds one step of the test.
func (b *testBundle) consoleFor(u users.User) (base string, step func(time.Duration) context.Context) {
	b.t.Helper()
	base = "http://" + serve(b.t, b.appWith(nil))
	sid, _ := b.sessionFor(u)
	return base, browserSignedIn(b.t, base, sid)
}

// signIn gives the browser the session sid.
func signIn(t *testing.T, ctx context.Context, base, sid string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/healthz"),
		chromedp.Evaluate[chromedp.Void](`document.cookie = "herald_session=`+sid+`; path=/"`)); err != nil {
		t.Fatalf("session cookie: %v", err)
	}
}

// TestConsoleAdminInChromium: an admin adds a webhook and an API key (each
// secret shown once), revokes the key, and finds both in the audit log.
func TestConsoleAdminInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	base, stepFor := b.consoleFor(b.newUser(access.RoleAdmin))
	step := func() context.Context { return stepFor(20 * time.Second) }
	hook := "https://crm.example.com/hooks/" + randomSuffix()
	keyName := "crm sync " + randomSuffix()
	if err := chromedp.Do(step(), chromedp.Navigate(base+"/console?lang=en#/admin/webhooks"),
		chromedp.WaitVisible(chromedp.CSS(`#w-url`)),
		chromedp.SendKeys(chromedp.CSS(`#w-url`), hook),
		chromedp.Click(chromedp.CSS(`#w-add`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#secret") && document.querySelector("#secret").textContent.startsWith("whsec_") &&
			document.querySelector("#webhooks").textContent.includes(`+strconv.Quote(hook)+`)`),
	); err != nil {
		t.Fatalf("add a webhook: %v", err)
	}
	if err := chromedp.Do(step(), chromedp.Navigate(base+"/console?lang=en#/admin/api-keys"),
		chromedp.WaitVisible(chromedp.CSS(`#k-name`)),
		chromedp.SendKeys(chromedp.CSS(`#k-name`), keyName),
		chromedp.Click(chromedp.CSS(`#k-add`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#secret") && document.querySelector("#secret").textContent.startsWith("hk_") &&
			document.querySelector("#api-keys").textContent.includes(`+strconv.Quote(keyName)+`)`),
	); err != nil {
		t.Fatalf("add an API key: %v", err)
	}
	key, err := chromedp.Run(step(), chromedp.Text(chromedp.CSS(`#secret`)))
	if err != nil {
		t.Fatal(err)
	}
	if res := b.do(http.MethodGet, "/api/v1/conversations/counts", key, "", nil); res.status != http.StatusOK {
		t.Fatalf("the new key: %d %s", res.status, res.body)
	}
	if err := chromedp.Do(step(),
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#api-keys tr")].find((r) => r.textContent.includes(`+strconv.Quote(keyName)+`)).querySelector("button").click()`),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#api-keys tr.revoked")].some((r) => r.textContent.includes(`+strconv.Quote(keyName)+`))`),
	); err != nil {
		t.Fatalf("revoke the key: %v", err)
	}
	if res := b.do(http.MethodGet, "/api/v1/conversations/counts", key, "", nil); res.status != http.StatusUnauthorized {
		t.Fatalf("the revoked key: %d", res.status)
	}
	// Other tests write to the audit log too: filter by the action, and
	// look for this key's id.
	var keyID string
	for _, k := range b.do(http.MethodGet, "/api/v1/api-keys", b.admin, "", nil).json(t)["items"].([]any) {
		if k.(map[string]any)["name"] == keyName {
			keyID = fmt.Sprint(k.(map[string]any)["id"])
		}
	}
	if err := chromedp.Do(step(), chromedp.Navigate(base+"/console?lang=en#/admin/audit"),
		chromedp.WaitVisible(chromedp.CSS(`#audit-action`)),
		chromedp.SendKeys(chromedp.CSS(`#audit-action`), "api_key.revoke"),
		chromedp.Click(chromedp.CSS(`#audit-filter`)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#audit tbody tr")].some((r) => r.textContent.includes("api_key.revoke") &&
			r.textContent.includes("api_key `+keyID+`"))`),
	); err != nil {
		t.Fatalf("the audit log: %v", err)
	}
}

// TestConsoleComposerScheduleInChromium: what the composer's schedule and
// buttons become in the campaign it saves: nine in the morning in each
// subscriber's zone, outside quiet hours, at most 600 a minute, with an
// answer button.
func TestConsoleComposerScheduleInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	base, step := b.consoleFor(b.newUser(access.RoleMarketer))
	day := time.Now().AddDate(0, 0, 2).Format("2006-01-02")
	set := func(css, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`(() => { const el = document.querySelector(` + strconv.Quote(css) + `); el.value = ` +
			strconv.Quote(value) + `; el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true})); })()`)
	}
	if err := chromedp.Do(step(40*time.Second), chromedp.Navigate(base+"/console?lang=en#/campaigns/new"),
		chromedp.WaitVisible(chromedp.ID("c-name")),
		chromedp.SendKeys(chromedp.ID("c-name"), "Morning news"),
		set("#c-app", b.appSlug),
		chromedp.SendKeys(chromedp.ID("c-title"), "Good morning"),
		chromedp.SendKeys(chromedp.ID("c-body"), "Coffee is on us today"),
		chromedp.Click(chromedp.CSS(`#c-lists input[value="`+b.list+`"]`)),
		chromedp.Click(chromedp.ID("c-add-button")),
		chromedp.SendKeys(chromedp.CSS(`#c-actions input[aria-label="Label"]`), "Yes please"),
		set(`#c-actions select`, "reply"),
		chromedp.Click(chromedp.CSS(`input[name="mode"][value="local"]`)),
		chromedp.WaitVisible(chromedp.ID("c-local-date")),
		set("#c-local-date", day),
		set("#c-local-time", "09:00"),
		chromedp.Click(chromedp.ID("c-quiet")),
		chromedp.WaitVisible(chromedp.ID("c-zone")),
		set("#c-zone", "Europe/Berlin"),
		set("#c-throttle", "600"),
		chromedp.Click(chromedp.ID("c-save")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#campaign-status") && document.querySelector("#campaign-status").textContent === "Draft"`),
	); err != nil {
		t.Fatalf("compose: %v", err)
	}
	id, err := chromedp.Run(step(10*time.Second), chromedp.Evaluate[string](`location.hash.split("/").pop()`))
	if err != nil {
		t.Fatal(err)
	}
	c := b.do(http.MethodGet, "/api/v1/campaigns/"+id, b.marketer, "", nil).json(t)
	schedule, _ := c["schedule"].(map[string]any)
	quiet, _ := schedule["quiet_hours"].(map[string]any)
	actions, _ := c["content"].(map[string]any)["actions"].([]any)
	if schedule["mode"] != "local" || schedule["local_date"] != day || schedule["local_time"] != "09:00" ||
		schedule["default_timezone"] != "Europe/Berlin" || quiet["start"] != "22:00" || quiet["end"] != "08:00" ||
		c["throttle_per_minute"] != float64(600) || len(actions) != 1 ||
		actions[0].(map[string]any)["type"] != "reply" || actions[0].(map[string]any)["reply_text"] != "Yes please" {
		t.Fatalf("saved %v", c)
	}
}
