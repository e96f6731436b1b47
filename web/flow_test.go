package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// TestDoubleOptInFlow drives the whole flow through HTTP against the real
// database, River and the provider simulator: a browser (Web Push) and an
// app user (APNs, identity-verified) subscribe, confirmations travel through
// webpush encryption and apns2, both confirm, one leaves by one-click link,
// then an admin exports and erases their data.
func TestDoubleOptInFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	// 1. A browser subscribes with a Web Push subscription.
	wp := b.webPushSubscription()
	res := b.postJSON("/public/v1/subscribe", "", map[string]any{
		"app": b.appSlug, "list": b.list, "locale": "de-DE", "timezone": "Europe/Berlin", "consent_version": 1,
		"device": webPushDevice(wp),
	})
	if res.status != http.StatusAccepted {
		t.Fatalf("web subscribe: %d %s", res.status, res.body)
	}
	body := res.json(t)
	if body["status"] != "pending" || body["subscriber_token"] == "" {
		t.Fatalf("web subscribe answered %v", body)
	}
	var webSub int64
	if err := b.pool.QueryRow(ctx, `SELECT subscriber_id FROM devices WHERE token = $1`, wp.Endpoint).Scan(&webSub); err != nil {
		t.Fatal(err)
	}

	// 2. An app user subscribes with an APNs device, proving who they are.
	apnsToken := b.sim.NewAPNsToken(true)
	extID := "user-" + randomSuffix()
	res = b.postJSON("/public/v1/subscribe", "", map[string]any{
		"app": b.appSlug, "list": b.list, "external_id": extID, "identity_hmac": optin.IdentityHMAC(b.identity, extID),
		"email": "ada@example.com", "timezone": "America/New_York",
		"device": map[string]any{"platform": "apns", "token": apnsToken, "bundle_id": "com.example.app", "environment": "sandbox"},
	})
	if res.status != http.StatusAccepted {
		t.Fatalf("app subscribe: %d %s", res.status, res.body)
	}
	var appSub int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM subscribers WHERE external_id = $1`, extID).Scan(&appSub); err != nil {
		t.Fatal(err)
	}
	if b.membership(webSub) != subscribers.StatusPending || b.membership(appSub) != subscribers.StatusPending {
		t.Fatal("memberships are not pending")
	}

	// 3. The confirmation jobs deliver through the providers' protocols.
	var webMsg struct {
		Title string            `json:"title"`
		URL   string            `json:"url"`
		Data  map[string]string `json:"data"`
	}
	got := b.waitReceived("webpush", wp.Endpoint, 1)
	if err := json.Unmarshal(got[0].Payload, &webMsg); err != nil {
		t.Fatalf("decrypted web push payload: %v", err)
	}
	// The browser said de-DE: Herald writes its own messages in German.
	if !strings.HasPrefix(webMsg.Title, "Bitte bestätigen") || webMsg.Data["unsubscribe_url"] == "" {
		t.Fatalf("web push confirmation %+v", webMsg)
	}
	var apnsMsg struct {
		APS map[string]any `json:"aps"`
		URL string         `json:"url"`
	}
	got = b.waitReceived("apns", apnsToken, 1)
	if err := json.Unmarshal(got[0].Payload, &apnsMsg); err != nil || apnsMsg.URL == "" {
		t.Fatalf("apns payload %s (%v)", got[0].Payload, err)
	}
	if got[0].Header.Get("apns-priority") != "10" || got[0].Header.Get("apns-topic") != "com.example.app" {
		t.Fatalf("apns headers %v", got[0].Header)
	}

	// 4. Opening the link asks for a press; only the press confirms.
	page := b.do(http.MethodGet, b.pathOf(webMsg.URL), "", "", nil)
	if page.status != http.StatusOK || !strings.Contains(string(page.body), "Yes, subscribe me") {
		t.Fatalf("confirm page: %d %s", page.status, page.body)
	}
	if b.membership(webSub) != subscribers.StatusPending {
		t.Fatal("opening the link confirmed without a press")
	}
	for _, link := range []string{webMsg.URL, apnsMsg.URL} {
		page = b.do(http.MethodPost, b.pathOf(link), "", "application/x-www-form-urlencoded", nil)
		if page.status != http.StatusOK || !strings.Contains(string(page.body), "You are subscribed") {
			t.Fatalf("confirm: %d %s", page.status, page.body)
		}
	}
	if b.membership(webSub) != subscribers.StatusConfirmed || b.membership(appSub) != subscribers.StatusConfirmed {
		t.Fatal("memberships not confirmed")
	}
	// A used link says so.
	page = b.do(http.MethodPost, b.pathOf(webMsg.URL), "", "application/x-www-form-urlencoded", nil)
	if page.status != http.StatusConflict || !strings.Contains(string(page.body), "already used") {
		t.Fatalf("reused link: %d %s", page.status, page.body)
	}

	// 5. Consent records prove request and confirmation with who and how.
	recs, err := subscribers.ConsentRecords(ctx, b.pool, appSub)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Action != subscribers.ActionOptInRequest || recs[0].Source != subscribers.SourceApp ||
		recs[1].Action != subscribers.ActionConfirm || recs[1].Source != subscribers.SourceLink ||
		recs[0].IP == nil || recs[0].IP.Addr().String() != "198.51.100.23" || recs[0].UserAgent == nil ||
		recs[0].ConsentVersion == nil || *recs[0].ConsentVersion != 1 {
		t.Fatalf("consent records %+v", recs)
	}

	// 6. The one-click link from the message unsubscribes.
	unsub := b.do(http.MethodPost, b.pathOf(webMsg.Data["unsubscribe_url"]), "", "application/x-www-form-urlencoded", []byte("List-Unsubscribe=One-Click"))
	if unsub.status != http.StatusOK || !strings.Contains(string(unsub.body), "You are unsubscribed") {
		t.Fatalf("unsubscribe: %d %s", unsub.status, unsub.body)
	}
	if b.membership(webSub) != subscribers.StatusUnsubscribed {
		t.Fatal("not unsubscribed")
	}
	recs, _ = subscribers.ConsentRecords(ctx, b.pool, webSub)
	if last := recs[len(recs)-1]; last.Action != subscribers.ActionUnsubscribe || last.Source != subscribers.SourceLink {
		t.Fatalf("last consent record %+v", last)
	}

	// 7. Export: only admins, everything about the person.
	path := fmt.Sprintf("/api/v1/subscribers/%d/export", appSub)
	if r := b.do(http.MethodGet, path, b.marketer, "", nil); r.status != http.StatusForbidden {
		t.Fatalf("marketer export: %d", r.status)
	}
	if r := b.do(http.MethodGet, path, "", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous export: %d", r.status)
	}
	exp := b.do(http.MethodGet, path, b.admin, "", nil)
	if exp.status != http.StatusOK {
		t.Fatalf("export: %d %s", exp.status, exp.body)
	}
	var export subscribers.Export
	if err := json.Unmarshal(exp.body, &export); err != nil {
		t.Fatal(err)
	}
	if *export.Subscriber.Email != "ada@example.com" || len(export.Devices) != 1 || len(export.Memberships) != 1 || len(export.ConsentRecords) != 2 {
		t.Fatalf("export %s", exp.body)
	}

	// 8. Erase: personal data goes, anonymised proof stays.
	if r := b.do(http.MethodDelete, fmt.Sprintf("/api/v1/subscribers/%d", appSub), b.admin, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("erase: %d %s", r.status, r.body)
	}
	sub, err := subscribers.Get(ctx, b.pool, appSub)
	if err != nil {
		t.Fatal(err)
	}
	if sub.State != subscribers.StateErased || sub.Email != nil || sub.ExternalID != nil || sub.Timezone != "" {
		t.Fatalf("erased subscriber %+v", sub)
	}
	devs, _ := subscribers.Devices(ctx, b.pool, appSub)
	mems, _ := subscribers.Memberships(ctx, b.pool, appSub)
	if len(devs) != 0 || len(mems) != 0 {
		t.Fatalf("devices %v memberships %v survive erasure", devs, mems)
	}
	recs, _ = subscribers.ConsentRecords(ctx, b.pool, appSub)
	if len(recs) != 3 || recs[2].Action != subscribers.ActionErase {
		t.Fatalf("consent records after erasure %+v", recs)
	}
	for _, r := range recs[:2] {
		if r.UserAgent != nil || r.IP == nil || r.IP.String() != "198.51.100.0/24" {
			t.Fatalf("consent record not anonymised: ip %v ua %v", r.IP, r.UserAgent)
		}
	}
}

// TestSingleOptInAndReturningBrowser checks that single opt-in confirms at
// once, and that a browser subscribing again with the same push subscription
// is the same subscriber, not a copy.
func TestSingleOptInAndReturningBrowser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	slug, name, single := "single-"+randomSuffix(), "Single", "single"
	if _, err := subscribers.CreateList(ctx, b.pool, subscribers.ListParams{Slug: &slug, Name: &name, OptIn: &single}); err != nil {
		t.Fatal(err)
	}
	wp := b.webPushSubscription()
	for i := range 2 {
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": slug, "device": webPushDevice(wp)})
		if res.status != http.StatusOK || res.json(t)["status"] != "confirmed" {
			t.Fatalf("subscribe %d: %d %s", i, res.status, res.body)
		}
	}
	var subs, devices int
	b.pool.QueryRow(ctx, `SELECT count(DISTINCT subscriber_id), count(*) FROM devices WHERE token = $1`, wp.Endpoint).Scan(&subs, &devices)
	if subs != 1 || devices != 1 {
		t.Fatalf("%d subscribers and %d devices for one browser", subs, devices)
	}
	if got := b.sim.Received("webpush", wp.Endpoint); len(got) != 0 {
		t.Fatalf("single opt-in sent a confirmation: %v", got)
	}
}

// TestDeviceMovesBetweenSubscribers checks that a token re-registered by
// another (verified) user moves to them and is not copied.
func TestDeviceMovesBetweenSubscribers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	token := b.sim.NewFCMToken()
	for _, user := range []string{"first-" + randomSuffix(), "second-" + randomSuffix()} {
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{
			"app": b.appSlug, "list": b.list, "external_id": user, "identity_hmac": optin.IdentityHMAC(b.identity, user),
			"device": map[string]any{"platform": "fcm", "token": token},
		})
		if res.status != http.StatusAccepted {
			t.Fatalf("subscribe %s: %d %s", user, res.status, res.body)
		}
	}
	var n int
	var owner string
	b.pool.QueryRow(ctx, `SELECT count(*), max(s.external_id) FROM devices d JOIN subscribers s ON s.id = d.subscriber_id
		WHERE d.token = $1`, token).Scan(&n, &owner)
	if n != 1 || !strings.HasPrefix(owner, "second-") {
		t.Fatalf("%d devices, owner %q", n, owner)
	}
}

// TestConfirmationToGoneDeviceDeactivatesIt checks the device hygiene path.
func TestConfirmationToGoneDeviceDeactivatesIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.sim.NewFCMToken()
	b.sim.SetFault("fcm", token, simFault404())
	res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list,
		"device": map[string]any{"platform": "fcm", "token": token}})
	if res.status != http.StatusAccepted {
		t.Fatalf("subscribe: %d %s", res.status, res.body)
	}
	waitFor(t, func() bool {
		var active bool
		b.pool.QueryRow(context.Background(), `SELECT active FROM devices WHERE token = $1`, token).Scan(&active)
		return !active
	})
}
