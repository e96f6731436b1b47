package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/optin"
)

// TestConsoleStoryInChromium is Herald as its three kinds of people use
// it, each in a browser of their own, with nothing set up behind the
// pages' backs:
//  1. an admin signs in, creates a list and invites a marketer, who sets a
//     password from the invitation and lands in the console;
//  2. a subscriber opts in on the list's hosted page and confirms (the
//     browser's push service is unreachable here, so PushManager.subscribe
//     returns a subscription whose keys the simulator holds);
//  3. the marketer composes with the preview, schedules the campaign a few
//     seconds ahead and watches its page go to finished without reloading;
//  4. the subscriber sees the broadcast in the chat widget and answers; an
//     agent sees it arrive live, picks it up and answers; the widget shows
//     the answer live, and the agent sees it read.
func TestConsoleStoryInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	base := "http://" + serve(t, b.appWith(nil))
	run := func(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(ctx context.Context, what, js string) string {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return out
	}
	// settle waits for js to be true across a navigation the last step
	// started (a form post): evaluations fail while the page changes.
	settle := func(browser context.Context, what, js string) {
		t.Helper()
		deadline := time.NewTimer(20 * time.Second)
		defer deadline.Stop()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(browser, 2*time.Second)
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			cancel()
			if err == nil && ok {
				return
			}
			select {
			case <-deadline.C:
				t.Fatalf("%s: %v", what, err)
			case <-tick.C:
			}
		}
	}
	suffix := randomSuffix()[:6]

	// 1. The admin signs in through the page, makes a list and invites a
	// marketer.
	admin := b.newUser(access.RoleAdmin)
	staff := newChromium(t)
	step := func(browser context.Context, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(browser, d)
		t.Cleanup(cancel)
		return ctx
	}
	listName := "Autumn news " + suffix
	run(step(staff, 30*time.Second), "the admin signs in and makes a list",
		chromedp.Navigate(base+"/sign-in?lang=en&next=/console"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), admin.Email),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.ID("submit")),
	)
	settle(staff, "the admin is in the console", `document.querySelector('a[href="#/admin/users"]') !== null`)
	run(step(staff, 30*time.Second), "the admin makes a list",
		chromedp.Navigate(base+"/console?lang=en#/lists"),
		chromedp.WaitVisible(chromedp.ID("l-name")),
		chromedp.SendKeys(chromedp.ID("l-name"), listName),
		chromedp.SendKeys(chromedp.ID("l-consent"), "I agree to receive the autumn news."),
		chromedp.Click(chromedp.ID("l-add")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#lists") && document.querySelector("#lists").textContent.includes(`+strconv.Quote(listName)+`)`),
	)
	slug := "autumn-news-" + suffix
	if l := b.do(http.MethodGet, "/api/v1/lists/"+slug, b.admin, "", nil); l.status != http.StatusOK {
		t.Fatalf("the list the admin made: %d %s", l.status, l.body)
	}
	marketerEmail := "marketer-" + suffix + "@example.com"
	run(step(staff, 20*time.Second), "the admin invites a marketer",
		chromedp.Navigate(base+"/console?lang=en#/admin/users"),
		chromedp.WaitVisible(chromedp.ID("i-email")),
		chromedp.SendKeys(chromedp.ID("i-email"), marketerEmail),
		chromedp.SendKeys(chromedp.ID("i-name"), "Mara Marketing"),
		chromedp.SetValue(chromedp.ID("i-role"), "marketer"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#i-role").dispatchEvent(new Event("change", {bubbles: true}))`),
		chromedp.Click(chromedp.ID("i-add")),
		chromedp.WaitVisible(chromedp.ID("secret")),
	)
	link := eval(step(staff, 10*time.Second), "the invitation link", `document.querySelector("#secret").textContent`)
	if !strings.Contains(link, "/access/") {
		t.Fatalf("invitation link %q", link)
	}
	marketer := newChromium(t)
	run(step(marketer, 30*time.Second), "the marketer accepts the invitation",
		chromedp.Navigate(base+b.pathOf(link)+"?lang=en"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.SendKeys(chromedp.ID("password2"), testPassword),
		chromedp.Click(chromedp.ID("submit")),
	)
	// Straight into the console, where a marketer's work is.
	settle(marketer, "the marketer lands in the console", `document.querySelector("#new-campaign") !== null`)

	// 2. A subscriber opts in on the hosted page and confirms.
	subscriber := newChromium(t)
	sub := b.webPushSubscription()
	optinPage := base + "/l/" + slug + "?app=" + b.appSlug + "&lang=en"
	stub := `(() => { Notification.requestPermission = async () => "granted";
		PushManager.prototype.subscribe = async function () {
			return { toJSON: () => ({ endpoint: ` + strconv.Quote(sub.Endpoint) + `, expirationTime: null,
				keys: { p256dh: ` + strconv.Quote(sub.P256dh) + `, auth: ` + strconv.Quote(sub.Auth) + ` } }) };
		}; })()`
	run(step(subscriber, 30*time.Second), "the subscriber opts in",
		chromedp.Navigate(optinPage),
		chromedp.WaitVisible(chromedp.ID("subscribe")),
		chromedp.Evaluate[chromedp.Void](stub),
		chromedp.Click(chromedp.ID("subscribe")),
		chromedp.Poll[chromedp.Void](`document.getElementById("herald-optin").dataset.result === "pending"`),
	)
	confirmation := b.waitReceived("webpush", sub.Endpoint, 1)
	var push struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(confirmation[0].Payload, &push); err != nil || push.URL == "" {
		t.Fatalf("confirmation push %s: %v", confirmation[0].Payload, err)
	}
	run(step(subscriber, 20*time.Second), "the subscriber confirms",
		chromedp.Navigate(base+b.pathOf(push.URL)),
		chromedp.WaitVisible(chromedp.ID("submit")),
		chromedp.Click(chromedp.ID("submit")),
	)
	settle(subscriber, "the subscriber confirms", `document.querySelector("#heading") !== null && document.querySelector("#heading").textContent === "You are subscribed"`)

	// 3. The marketer composes, schedules a few seconds ahead and watches.
	title := "Autumn is here " + suffix
	run(step(marketer, 45*time.Second), "the marketer composes",
		chromedp.Click(chromedp.ID("new-campaign")),
		chromedp.WaitVisible(chromedp.ID("c-name")),
		chromedp.SendKeys(chromedp.ID("c-name"), title),
		chromedp.Evaluate[chromedp.Void](`(() => { const el = document.querySelector("#c-app"); el.value = "`+b.appSlug+`";
			el.dispatchEvent(new Event("input", {bubbles: true})); })()`),
		chromedp.SendKeys(chromedp.ID("c-title"), title),
		chromedp.SendKeys(chromedp.ID("c-body"), "New colours, new offers. Answer us here."),
		chromedp.Click(chromedp.CSS(`#c-lists input[value="`+slug+`"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#preview-ios").textContent.includes(`+strconv.Quote(title)+`)`),
	)
	run(step(marketer, 45*time.Second), "the marketer schedules",
		chromedp.Click(chromedp.CSS(`input[name="mode"][value="at"]`)),
		chromedp.WaitVisible(chromedp.ID("c-at")),
		// Eight seconds from now, in the browser's own time zone.
		chromedp.Evaluate[chromedp.Void](`(() => { const d = new Date(Date.now() + 8000); const p = (n) => String(n).padStart(2, "0");
			const el = document.querySelector("#c-at");
			el.value = d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
			el.dispatchEvent(new Event("input", {bubbles: true})); })()`),
		chromedp.Click(chromedp.ID("c-save")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#campaign-status") && document.querySelector("#campaign-status").textContent === "Draft"`),
		// The audience line comes after the page: wait for it, or the
		// button moves under the click.
		chromedp.Poll[chromedp.Void](`document.querySelector("#audience-devices") && document.querySelector("#audience-devices").textContent === "1"`),
		chromedp.Evaluate[chromedp.Void](`window.heraldNoReload = true`),
		chromedp.Click(chromedp.ID("action-schedule")),
		chromedp.Poll[chromedp.Void](`["Scheduled", "Sending", "Finished"].includes(document.querySelector("#campaign-status").textContent)`),
	)
	run(step(marketer, 90*time.Second), "the campaign page shows it finished",
		chromedp.Poll[chromedp.Void](`document.querySelector("#campaign-status").textContent === "Finished"`))
	if got := eval(step(marketer, 10*time.Second), "the figures", `document.querySelector("#figure-delivered").textContent + " " + window.heraldNoReload`); got != "1 true" {
		t.Fatalf("delivered and not reloaded: %q", got)
	}
	b.waitReceived("webpush", sub.Endpoint, 2)

	// 4. The subscriber answers in the widget; an agent answers back.
	agent := b.newUser(access.RoleAgent)
	agentSID, _ := b.sessionFor(agent)
	// The agent's own browser (the admin's holds the admin's session).
	adminBrowser := staff
	staff = newChromium(t)
	signIn(t, step(staff, 20*time.Second), base, agentSID)
	run(step(staff, 20*time.Second), "the agent opens the inbox",
		chromedp.Navigate(base+"/console?lang=en#/inbox"),
		chromedp.WaitVisible(chromedp.ID("view-unassigned")),
		chromedp.Evaluate[chromedp.Void](`window.heraldNoReload = true`),
	)
	widget := `document.querySelector("#herald-chat").shadowRoot`
	question := "Do the offers hold in the shop too? " + suffix
	run(step(subscriber, 30*time.Second), "the subscriber writes in the widget",
		chromedp.Navigate(optinPage),
		chromedp.Poll[chromedp.Void](`document.querySelector("#herald-chat") !== null`),
		chromedp.Evaluate[chromedp.Void](widget+`.querySelector(".launch").click()`),
		// The broadcast they received is there.
		chromedp.Poll[chromedp.Void](widget+`.querySelector(".b") && `+widget+`.querySelector(".b").textContent.includes(`+strconv.Quote(title)+`)`),
		chromedp.Evaluate[chromedp.Void](`(() => { const r = `+widget+`; const input = r.querySelector("textarea");
			input.value = `+strconv.Quote(question)+`; input.dispatchEvent(new Event("input"));
			r.querySelector("form").requestSubmit(); })()`),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.subscriber:not(.pending)")].some((m) => m.dataset.id && m.textContent.includes(`+strconv.Quote(question)+`))`),
	)
	// The widget's styles stay in its shadow root: the page's own heading
	// keeps the page's font.
	if got := eval(step(subscriber, 10*time.Second), "the page's styles", `getComputedStyle(document.querySelector("#heading")).fontFamily === getComputedStyle(document.body).fontFamily ? "kept" : "changed"`); got != "kept" {
		t.Fatalf("the widget changed the page: %s", got)
	}
	answer := "Yes, in every shop until Sunday."
	run(step(staff, 30*time.Second), "the agent sees it live, picks it up and answers",
		chromedp.Poll[chromedp.Void](`document.querySelector("#conversations") && document.querySelector("#conversations").textContent.includes(`+strconv.Quote(question)+`) && window.heraldNoReload === true`),
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#conversations a")].find((a) => a.textContent.includes(`+strconv.Quote(question)+`)).click()`),
		chromedp.WaitVisible(chromedp.ID("pick-up")),
		chromedp.Click(chromedp.ID("pick-up")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#assignee").textContent === `+strconv.Quote(agent.Name)),
		chromedp.SendKeys(chromedp.ID("reply"), answer),
		chromedp.Click(chromedp.ID("send")),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#messages .message.agent:not(.pending)")].some((m) => m.textContent.includes(`+strconv.Quote(answer)+`))`),
	)
	if err := chromedp.Do(step(subscriber, 20*time.Second),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.agent")].some((m) => m.textContent.includes(`+strconv.Quote(answer)+`))`)); err != nil {
		text, _ := chromedp.Run(step(subscriber, 5*time.Second), chromedp.Evaluate[string](widget+`.querySelector(".panel").innerText`))
		t.Fatalf("the widget did not show the answer: %v; it shows:\n%s", err, text)
	}
	if err := chromedp.Do(step(subscriber, 20*time.Second),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.agent")].some((m) => m.textContent.includes(`+strconv.Quote(answer)+`) && m.textContent.includes(`+strconv.Quote(agent.Name)+`))`),
		// The agent opened the conversation: the subscriber's last message is seen.
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.subscriber .meta")].some((m) => m.textContent.includes("Seen"))`),
	); err != nil {
		text, _ := chromedp.Run(step(subscriber, 5*time.Second), chromedp.Evaluate[string](widget+`.querySelector(".panel").innerText`))
		t.Fatalf("the widget shows the answer with who wrote it, and the question seen: %v; it shows:\n%s", err, text)
	}
	run(step(subscriber, 30*time.Second), "after a reload the question is still seen",
		chromedp.Navigate(optinPage),
		chromedp.Poll[chromedp.Void](`document.querySelector("#herald-chat") !== null`),
		chromedp.Evaluate[chromedp.Void](widget+`.querySelector(".launch").click()`),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.subscriber .meta")].some((m) => m.textContent.includes("Seen"))`),
	)
	run(step(staff, 20*time.Second), "the agent sees the answer read",
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#messages .message.agent")].some((m) => m.textContent.includes(`+strconv.Quote(answer)+`) && m.querySelector(".read"))`),
	)
	docsScreenshot(t, step(subscriber, 20*time.Second), "widget")
	// The pages' event streams hold connections the server's shutdown
	// would wait for.
	for _, browser := range []context.Context{staff, adminBrowser, subscriber, marketer} {
		run(step(browser, 10*time.Second), "leave", chromedp.Navigate("about:blank"))
	}
}

// TestWidgetOnAnotherSiteInChromium: a shop's page on another origin,
// whose styles try to restyle everything, embeds the widget for its
// signed-in customer (identity HMAC from the shop's backend). The widget
// keeps its own look, calls Herald across origins, and the customer's
// message arrives; the shop's page keeps its own look too.
func TestWidgetOnAnotherSiteInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Parallel()
	b := setup(t)
	base := "http://" + serve(t, b.appWith(nil))
	ext := "shop-customer-" + randomSuffix()
	if res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext,
		"identity_hmac": optin.IdentityHMAC(b.identity, ext), "device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}}); res.status != http.StatusAccepted {
		t.Fatalf("subscribe: %d %s", res.status, res.body)
	}
	page := `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Shop</title><style>
		* { color: rgb(255, 0, 0) !important; font: 40px serif !important; background: lime !important; }
		div, section, button, textarea { display: none !important; border: 9px solid blue !important; }
		</style></head><body><h1 id="heading">Schuhe</h1>
		<script src="` + base + `/widget.js" data-app="` + b.appSlug + `" data-external-id="` + ext + `"
			data-identity-hmac="` + optin.IdentityHMAC(b.identity, ext) + `" async></script></body></html>`
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(shop.Close)

	browser := newChromium(t)
	ctx := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(browser, d)
		t.Cleanup(cancel)
		return c
	}
	widget := `document.querySelector("#herald-chat").shadowRoot`
	message := "Passen die Schuhe auch in Größe 46? " + randomSuffix()
	if err := chromedp.Do(ctx(30*time.Second),
		chromedp.Navigate(shop.URL),
		chromedp.Poll[chromedp.Void](`document.querySelector("#herald-chat") !== null`),
		chromedp.Evaluate[chromedp.Void](widget+`.querySelector(".launch").click()`),
		chromedp.Poll[chromedp.Void](`!`+widget+`.querySelector(".panel").hidden`),
	); err != nil {
		t.Fatalf("the widget on the shop's page: %v", err)
	}
	look, err := chromedp.Run(ctx(10*time.Second), chromedp.Evaluate[map[string]string](`(() => {
		const r = `+widget+`; const launch = r.querySelector(".launch"); const panel = r.querySelector(".panel");
		const box = launch.getBoundingClientRect();
		return { launchWidth: String(box.width), launchColor: getComputedStyle(launch).color,
			panelDisplay: getComputedStyle(panel).display, panelFont: getComputedStyle(panel.querySelector("textarea")).fontSize,
			title: r.querySelector("header h2").textContent, placeholder: r.querySelector("textarea").placeholder,
			heading: getComputedStyle(document.querySelector("#heading")).color };
	})()`))
	if err != nil {
		t.Fatalf("the widget's look: %v", err)
	}
	want := map[string]string{"launchWidth": "56", "launchColor": "rgb(255, 255, 255)", "panelDisplay": "flex", "panelFont": "14px",
		"title": "Nachrichten", "placeholder": "Nachricht schreiben…", "heading": "rgb(255, 0, 0)"}
	for k, v := range want {
		if look[k] != v {
			t.Errorf("%s: %q, want %q", k, look[k], v)
		}
	}
	if err := chromedp.Do(ctx(20*time.Second),
		chromedp.Evaluate[chromedp.Void](`(() => { const r = `+widget+`; const input = r.querySelector("textarea");
			input.value = `+strconv.Quote(message)+`; r.querySelector("form").requestSubmit(); })()`),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.subscriber")].some((m) => m.dataset.id && m.textContent.includes(`+strconv.Quote(message)+`))`),
		// A picture, chosen as a person would (the file input's change).
		chromedp.Evaluate[chromedp.Void](`(() => { const input = `+widget+`.querySelector("input[type=file]");
			const png = Uint8Array.from(atob("`+base64.StdEncoding.EncodeToString(pngBytes)+`"), (c) => c.charCodeAt(0));
			const dt = new DataTransfer(); dt.items.add(new File([png], "sole.png", { type: "image/png" }));
			input.files = dt.files; input.dispatchEvent(new Event("change")); })()`),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.subscriber")].some((m) => m.dataset.id && m.textContent.includes("sole.png") && m.querySelector("img"))`),
	); err != nil {
		t.Fatalf("the customer writes: %v", err)
	}
	// An agent answers with buttons; the customer taps the answer.
	var conversationID int64
	waitFor(t, func() bool {
		return b.pool.QueryRow(context.Background(), `SELECT c.id FROM conversations c JOIN subscribers s ON s.id = c.subscriber_id
			WHERE s.external_id = $1`, ext).Scan(&conversationID) == nil
	})
	if res := b.postJSON(fmt.Sprintf("/api/v1/conversations/%d/messages", conversationID), b.agent, map[string]any{
		"body": "Which width?", "buttons": []map[string]any{{"label": "Wide"}, {"label": "Size chart", "url": "https://shop.example/sizes"}},
	}); res.status != http.StatusCreated {
		t.Fatalf("the agent answers: %d %s", res.status, res.body)
	}
	if err := chromedp.Do(ctx(20*time.Second),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.agent .btn")].some((b) => b.textContent === "Wide")`),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.agent a.btn")].some((a) => a.href === "https://shop.example/sizes")`),
		chromedp.Evaluate[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.agent button.btn")].find((b) => b.textContent === "Wide").click()`),
		chromedp.Poll[chromedp.Void](`[...`+widget+`.querySelectorAll(".m.subscriber")].some((m) => m.dataset.id && m.textContent.startsWith("Wide"))`),
		chromedp.Navigate("about:blank"),
	); err != nil {
		t.Fatalf("the customer taps an answer: %v", err)
	}
	waitFor(t, func() bool {
		res := b.do(http.MethodGet, "/api/v1/conversations/search?q="+url.QueryEscape("Größe 46"), b.agent, "", nil)
		return res.status == http.StatusOK && strings.Contains(string(res.body), message)
	})
}
