package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// TestConsoleAPI covers what the console and the widget ask of the API:
// the campaigns a subscriber received, who sends (the public app), the
// admins' list of apps, an app's test push and a subscriber's
// conversations.
func TestConsoleAPI(t *testing.T) {
	t.Parallel()

	t.Run("BroadcastsListTheCampaignsThatReachedTheSubscriber", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		l, err := subscribers.GetList(ctx, b.pool, b.list)
		if err != nil {
			t.Fatal(err)
		}
		// member makes a subscriber with an FCM device of the app, a
		// confirmed member of the list if confirmed, and returns their
		// conversation token.
		member := func(locale string, confirmed bool) (token string, subID int64, fcm string) {
			ext := "broadcast-" + randomSuffix()
			p := subscribers.SubscriberParams{ExternalID: &ext}
			if locale != "" {
				p.Locale = &locale
			}
			sub, err := subscribers.Create(ctx, b.pool, p)
			if err != nil {
				t.Fatal(err)
			}
			fcm = b.sim.NewFCMToken()
			if _, err := subscribers.RegisterDevice(ctx, b.pool, sub.ID, b.appID, subscribers.DeviceParams{
				Platform: delivery.PlatformFCM, Token: fcm}); err != nil {
				t.Fatal(err)
			}
			if confirmed {
				if _, err := subscribers.SetConfirmed(ctx, b.pool, l.ID, sub.ID); err != nil {
					t.Fatal(err)
				}
			}
			res := b.postJSON("/public/v1/conversation/session", "", map[string]any{"app": b.appSlug, "external_id": ext,
				"identity_hmac": optin.IdentityHMAC(b.identity, ext)})
			if res.status != http.StatusOK {
				t.Fatalf("session: %d %s", res.status, res.body)
			}
			return res.json(t)["token"].(string), sub.ID, fcm
		}
		enToken, _, enFCM := member("en-GB", true)
		deToken, deID, deFCM := member("de-DE", true)
		outsiderToken, _, outsiderFCM := member("de-DE", false)

		campaign := func(content map[string]any) int64 {
			create := b.postJSON("/api/v1/campaigns", b.marketer, map[string]any{"app": b.appSlug, "name": "broadcast " + randomSuffix(),
				"content": content, "audience": map[string]any{"lists": []string{b.list}}})
			if create.status != http.StatusCreated {
				t.Fatalf("create: %d %s", create.status, create.body)
			}
			id := int64(create.json(t)["id"].(float64))
			if r := b.postJSON(fmt.Sprintf("/api/v1/campaigns/%d/schedule", id), b.marketer, nil); r.status != http.StatusOK {
				t.Fatalf("schedule: %d %s", r.status, r.body)
			}
			return id
		}
		started := time.Now().Add(-time.Minute)
		first := campaign(map[string]any{"title": "Spring sale", "body": "20% off everything",
			"variants": map[string]any{"de": map[string]any{"title": "Frühlingsverkauf", "body": "20 % auf alles"}}})
		second := campaign(map[string]any{"title": "New arrivals", "body": "Have a look"})
		for _, id := range []int64{first, second} {
			waitFor(t, func() bool {
				stats := b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d/stats", id), b.marketer, "", nil).json(t)
				return stats["status"] == "finished"
			})
		}
		b.waitReceived("fcm", enFCM, 2)
		b.waitReceived("fcm", deFCM, 2)
		if n := len(b.sim.Received("fcm", outsiderFCM)); n != 0 {
			t.Fatalf("someone who is no member received %d pushes", n)
		}

		items := func(t *testing.T, token, query string) []map[string]any {
			t.Helper()
			res := b.do(http.MethodGet, "/public/v1/conversation/broadcasts"+query, token, "", nil)
			if res.status != http.StatusOK {
				t.Fatalf("broadcasts%s: %d %s", query, res.status, res.body)
			}
			var out []map[string]any
			for _, it := range res.json(t)["items"].([]any) {
				out = append(out, it.(map[string]any))
			}
			return out
		}
		check := func(t *testing.T, who string, got []map[string]any, want ...[3]any) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%s sees %d broadcasts, want %d: %v", who, len(got), len(want), got)
			}
			for i, w := range want {
				g := got[i]
				if int64(g["campaign_id"].(float64)) != w[0].(int64) || g["title"] != w[1] || g["body"] != w[2] {
					t.Errorf("%s: broadcast %d is %v, want %v", who, i, g, w)
				}
				at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(g["received_at"]))
				if err != nil || at.Before(started) || at.After(time.Now().Add(time.Minute)) {
					t.Errorf("%s: received_at %v (%v)", who, g["received_at"], err)
				}
			}
		}
		// Newest first, each in the subscriber's language.
		check(t, "the English subscriber", items(t, enToken, "?limit=50"),
			[3]any{second, "New arrivals", "Have a look"}, [3]any{first, "Spring sale", "20% off everything"})
		check(t, "the German subscriber", items(t, deToken, "?limit=50"),
			[3]any{second, "New arrivals", "Have a look"}, [3]any{first, "Frühlingsverkauf", "20 % auf alles"})
		// Without ?limit= the listing's default page size applies, as on
		// every other listing (the widget always sends one).
		t.Run("WithoutALimit", func(t *testing.T) {
			check(t, "the German subscriber without ?limit=", items(t, deToken, ""),
				[3]any{second, "New arrivals", "Have a look"}, [3]any{first, "Frühlingsverkauf", "20 % auf alles"})
		})
		// Pages: ?limit= and ?before=.
		check(t, "one page", items(t, deToken, "?limit=1"), [3]any{second, "New arrivals", "Have a look"})
		check(t, "the next page", items(t, deToken, fmt.Sprintf("?before=%d&limit=50", second)),
			[3]any{first, "Frühlingsverkauf", "20 % auf alles"})
		// Another subscriber of the app sees none of it; nor does the same
		// subscriber in another app.
		check(t, "a subscriber outside the list", items(t, outsiderToken, "?limit=50"))
		other := setup(t)
		otherAppToken, _ := b.conv.SessionToken(deID, other.appID)
		check(t, "the subscriber in another app", items(t, otherAppToken, "?limit=50"))
	})

	t.Run("BroadcastsRefuseBadPagesAndNoToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token, _, _ := b.subscriberSession()
		for _, q := range []struct{ query, field string }{
			{"?limit=0", "limit"}, {"?limit=51", "limit"}, {"?limit=-1", "limit"}, {"?limit=abc", "limit"},
			{"?limit=99999999999999999999", "limit"}, {"?before=-1", "before"}, {"?before=%00", "before"},
		} {
			res := b.do(http.MethodGet, "/public/v1/conversation/broadcasts"+q.query, token, "", nil)
			if res.status != http.StatusUnprocessableEntity || res.json(t)["field"] != q.field {
				t.Errorf("broadcasts%s: %d %s", q.query, res.status, res.body)
			}
		}
		// Nothing received yet: an empty list, not null.
		if res := b.do(http.MethodGet, "/public/v1/conversation/broadcasts?limit=50", token, "", nil); res.status != http.StatusOK ||
			strings.TrimSpace(string(res.body)) != `{"items":[]}` {
			t.Errorf("no broadcasts: %d %s", res.status, res.body)
		}
		if res := b.do(http.MethodGet, "/public/v1/conversation/broadcasts", "", "", nil); res.status != http.StatusUnauthorized {
			t.Errorf("without a token: %d %s", res.status, res.body)
		}
		// A failed proof counts against the address: use one of this
		// test's own.
		if res := b.doFrom(b.app, "198.51.100.152", http.MethodGet, "/public/v1/conversation/broadcasts", "cs_forged", "", nil); res.status != http.StatusUnauthorized {
			t.Errorf("with a forged token: %d %s", res.status, res.body)
		}
		// An API key is not a conversation token.
		if res := b.doFrom(b.app, "198.51.100.152", http.MethodGet, "/public/v1/conversation/broadcasts", b.admin, "", nil); res.status != http.StatusUnauthorized {
			t.Errorf("with an API key: %d %s", res.status, res.body)
		}
	})

	t.Run("PublicAppSaysWhoSends", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		path := "/public/v1/apps/" + b.appSlug
		res := b.do(http.MethodGet, path, "", "", nil)
		if res.status != http.StatusOK {
			t.Fatalf("public app: %d %s", res.status, res.body)
		}
		got := res.json(t)
		if got["app"] != b.appSlug || got["vapid_public_key"] != b.vapidKey {
			t.Errorf("public app: %s", res.body)
		}
		for _, k := range []string{"company_name", "accent_color", "privacy_url", "imprint_url", "logo_url"} {
			if v, ok := got[k]; !ok || v != "" {
				t.Errorf("unbranded %s: %v (present %v)", k, v, ok)
			}
		}
		if r := b.do(http.MethodPatch, "/api/v1/apps/"+b.appSlug, b.admin, "application/json", []byte(`{"company_name":"Muster GmbH",
			"privacy_url":"https://muster.example/datenschutz","imprint_url":"https://muster.example/impressum","accent_color":"#0b5d1e"}`)); r.status != http.StatusOK {
			t.Fatalf("branding: %d %s", r.status, r.body)
		}
		png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)
		logo := b.do(http.MethodPut, "/api/v1/apps/"+b.appSlug+"/logo", b.admin, "image/png", png)
		logoPath, _ := logo.json(t)["logo_url"].(string)
		if logo.status != http.StatusOK || logoPath == "" {
			t.Fatalf("logo: %d %s", logo.status, logo.body)
		}
		res = b.do(http.MethodGet, path, "", "", nil)
		got = res.json(t)
		for k, want := range map[string]string{"app": b.appSlug, "company_name": "Muster GmbH", "accent_color": "#0b5d1e",
			"privacy_url": "https://muster.example/datenschutz", "imprint_url": "https://muster.example/impressum",
			"logo_url": b.cfg.PublicURL + logoPath} {
			if got[k] != want {
				t.Errorf("%s is %v, want %q", k, got[k], want)
			}
		}
		if strings.Contains(string(res.body), "identity_secret") || strings.Contains(string(res.body), b.identity) {
			t.Errorf("the public app shows the identity secret: %s", res.body)
		}
		if r := b.do(http.MethodGet, "/brand/"+b.appSlug+"/logo", "", "", nil); r.status != http.StatusOK {
			t.Errorf("the logo at logo_url: %d", r.status)
		}
		if r := b.do(http.MethodGet, "/public/v1/apps/no-such-app-"+randomSuffix(), "", "", nil); r.status != http.StatusNotFound {
			t.Errorf("unknown app: %d %s", r.status, r.body)
		}
	})

	t.Run("AdminsListApps", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.do(http.MethodGet, "/api/v1/apps", b.admin, "", nil)
		if res.status != http.StatusOK {
			t.Fatalf("apps: %d %s", res.status, res.body)
		}
		var mine map[string]any
		for _, it := range res.json(t)["items"].([]any) {
			app := it.(map[string]any)
			if _, ok := app["identity_secret"]; ok {
				t.Errorf("the list shows an identity secret: %v", app)
			}
			if app["slug"] == b.appSlug {
				mine = app
			}
		}
		if mine == nil || int64(mine["id"].(float64)) != b.appID || mine["name"] == "" {
			t.Fatalf("the bundle's app in the list: %v", mine)
		}
		if strings.Contains(string(res.body), b.identity) {
			t.Errorf("the list holds the identity secret")
		}
		for _, key := range []string{b.marketer, b.agent} {
			if r := b.do(http.MethodGet, "/api/v1/apps", key, "", nil); r.status != http.StatusForbidden {
				t.Errorf("a non-admin listed apps: %d %s", r.status, r.body)
			}
		}
		if r := b.do(http.MethodGet, "/api/v1/apps", "", "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("without a key: %d", r.status)
		}
	})

	t.Run("TestPushReachesTheDevice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token := b.sim.NewFCMToken()
		ext := "test-push-" + randomSuffix()
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext,
			"identity_hmac": optin.IdentityHMAC(b.identity, ext), "device": map[string]any{"platform": "fcm", "token": token}})
		if res.status != http.StatusAccepted {
			t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
		b.waitReceived("fcm", token, 1) // the confirmation
		list := b.do(http.MethodGet, "/api/v1/subscribers?external_id="+ext, b.admin, "", nil).json(t)
		subID := int64(list["items"].([]any)[0].(map[string]any)["id"].(float64))
		view := b.do(http.MethodGet, fmt.Sprintf("/api/v1/subscribers/%d", subID), b.admin, "", nil).json(t)
		devices := view["devices"].([]any)
		if len(devices) != 1 {
			t.Fatalf("devices: %v", devices)
		}
		deviceID := int64(devices[0].(map[string]any)["id"].(float64))
		path := "/api/v1/apps/" + b.appSlug + "/test-push"

		for _, key := range []string{b.marketer, b.agent} {
			if r := b.postJSON(path, key, map[string]any{"device_id": deviceID}); r.status != http.StatusForbidden {
				t.Errorf("a non-admin sent a test push: %d %s", r.status, r.body)
			}
		}
		if r := b.postJSON(path, "", map[string]any{"device_id": deviceID}); r.status != http.StatusUnauthorized {
			t.Errorf("without a key: %d %s", r.status, r.body)
		}
		if n := len(b.sim.Received("fcm", token)); n != 1 {
			t.Fatalf("refused test pushes were sent: the device has %d pushes", n)
		}

		// Only a device an admin marked as a test device gets one.
		if r := b.postJSON(path, b.admin, map[string]any{"device_id": deviceID}); r.status != http.StatusUnprocessableEntity || r.json(t)["field"] != "device_id" {
			t.Fatalf("a test push to a subscriber's own device: %d %s", r.status, r.body)
		}
		if n := len(b.sim.Received("fcm", token)); n != 1 {
			t.Fatalf("a refused test push was sent: the device has %d pushes", n)
		}
		if r := b.do(http.MethodPut, fmt.Sprintf("/api/v1/subscribers/%d/devices/%d", subID, deviceID), b.admin, "application/json",
			[]byte(`{"test_device":true}`)); r.status != http.StatusOK {
			t.Fatalf("mark the test device: %d %s", r.status, r.body)
		}
		res = b.postJSON(path, b.admin, map[string]any{"device_id": deviceID})
		if res.status != http.StatusOK {
			t.Fatalf("test push: %d %s", res.status, res.body)
		}
		got := res.json(t)
		outcome, _ := got["outcome"].(map[string]any)
		if int64(got["device_id"].(float64)) != deviceID || got["platform"] != "fcm" || outcome["class"] != "delivered" ||
			outcome["provider_id"] == "" || outcome["provider_id"] == nil {
			t.Errorf("test push answered %s", res.body)
		}
		pushes := b.waitReceived("fcm", token, 2)
		if !strings.Contains(string(pushes[1].Payload), apps.TestPushTitle) {
			t.Errorf("the test push: %s", pushes[1].Payload)
		}

		audit := b.do(http.MethodGet, "/api/v1/audit-log?action=app.test_push&object_id="+b.appSlug, b.admin, "", nil)
		if audit.status != http.StatusOK {
			t.Fatalf("audit log: %d %s", audit.status, audit.body)
		}
		entries := audit.json(t)["items"].([]any)
		if len(entries) != 1 {
			t.Fatalf("audit log has %d app.test_push entries for the app: %s", len(entries), audit.body)
		}
		e := entries[0].(map[string]any)
		summary, _ := e["summary"].(map[string]any)
		if e["action"] != "app.test_push" || e["object_type"] != "app" || e["object_id"] != b.appSlug || e["actor_type"] != "api_key" ||
			fmt.Sprint(summary["device_id"]) != fmt.Sprint(deviceID) || summary["platform"] != "fcm" {
			t.Errorf("audit entry %v", e)
		}
		result := b.do(http.MethodGet, "/api/v1/audit-log?action=app.test_push_result&object_id="+b.appSlug, b.admin, "", nil).json(t)["items"].([]any)
		if len(result) != 1 || result[0].(map[string]any)["summary"].(map[string]any)["class"] != "delivered" {
			t.Errorf("the recorded outcome: %v", result)
		}
		// An app takes ten a minute.
		for i := 2; i <= apps.TestPushesPerMinute; i++ {
			if r := b.postJSON(path, b.admin, map[string]any{"device_id": deviceID}); r.status != http.StatusOK {
				t.Fatalf("test push %d: %d %s", i, r.status, r.body)
			}
		}
		if r := b.postJSON(path, b.admin, map[string]any{"device_id": deviceID}); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("test push %d: %d %s", apps.TestPushesPerMinute+1, r.status, r.body)
		}
		if n := len(b.waitReceived("fcm", token, 1+apps.TestPushesPerMinute)); n != 1+apps.TestPushesPerMinute {
			t.Fatalf("the device has %d pushes", n)
		}
	})

	t.Run("TestPushRefusesHostileInput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		// A device of the app, one it no longer has, and one of another app.
		newDevice := func(appID int64) (int64, string) {
			sub, err := subscribers.Create(ctx, b.pool, subscribers.SubscriberParams{})
			if err != nil {
				t.Fatal(err)
			}
			token := b.sim.NewFCMToken()
			d, err := subscribers.RegisterDevice(ctx, b.pool, sub.ID, appID, subscribers.DeviceParams{Platform: delivery.PlatformFCM, Token: token})
			if err != nil {
				t.Fatal(err)
			}
			return d.ID, token
		}
		ownID, ownToken := newDevice(b.appID)
		goneID, goneToken := newDevice(b.appID)
		if _, err := b.pool.Exec(ctx, `UPDATE devices SET active = false WHERE id = $1`, goneID); err != nil {
			t.Fatal(err)
		}
		otherSlug := "other-" + randomSuffix()
		created := b.postJSON("/api/v1/apps", b.admin, map[string]any{"slug": otherSlug, "name": "Other app"})
		if created.status != http.StatusCreated {
			t.Fatalf("create an app: %d %s", created.status, created.body)
		}
		otherID, otherToken := newDevice(int64(created.json(t)["id"].(float64)))

		path := "/api/v1/apps/" + b.appSlug + "/test-push"
		for _, tt := range []struct {
			name, contentType, body string
			status                  int
			field                   string
		}{
			{"no body", "application/json", "", 400, "body"},
			{"no content type", "", `{"device_id":1}`, 415, ""},
			{"empty object", "application/json", `{}`, 422, "device_id"},
			{"null", "application/json", `null`, 422, "device_id"},
			{"an array", "application/json", `[]`, 400, "body"},
			{"zero", "application/json", `{"device_id":0}`, 422, "device_id"},
			{"negative", "application/json", `{"device_id":-1}`, 422, "device_id"},
			{"a string", "application/json", `{"device_id":"1"}`, 400, "device_id"},
			{"the id as a string", "application/json", fmt.Sprintf(`{"device_id":"%d"}`, ownID), 400, "device_id"},
			{"a fraction", "application/json", `{"device_id":1.5}`, 400, "device_id"},
			{"too big for int64", "application/json", `{"device_id":99999999999999999999}`, 400, "device_id"},
			{"an exponent", "application/json", `{"device_id":1e300}`, 400, "device_id"},
			{"the largest id", "application/json", `{"device_id":9223372036854775807}`, 422, "device_id"},
			{"a device that does not exist", "application/json", fmt.Sprintf(`{"device_id":%d}`, goneID+1_000_000_000), 422, "device_id"},
			{"a device of another app", "application/json", fmt.Sprintf(`{"device_id":%d}`, otherID), 422, "device_id"},
			{"an inactive device", "application/json", fmt.Sprintf(`{"device_id":%d}`, goneID), 422, "device_id"},
			{"an unknown field", "application/json", fmt.Sprintf(`{"device_id":%d,"token":"x"}`, ownID), 400, "token"},
			{"two values", "application/json", fmt.Sprintf(`{"device_id":%d}{"device_id":%d}`, ownID, ownID), 400, "body"},
			{"a NUL in a string", "application/json", `{"device_id":"\u0000"}`, 422, "device_id"},
			{"a raw NUL byte", "application/json", "{\"device_id\":1\x00}", 400, "body"},
			{"a raw NUL in a name", "application/json", "{\"device_id\x00\":1}", 422, ""},
			{"invalid UTF-8 in a string", "application/json", "{\"device_id\":\"\xff\xfe\"}", 422, "device_id"},
			{"invalid UTF-8 in a name", "application/json", "{\"\xc3\x28\":1}", 422, ""},
			{"a lone surrogate", "application/json", `{"device_id":"\ud800"}`, 422, "device_id"},
			{"cut short", "application/json", `{"device_id":`, 400, "body"},
			{"SQL", "application/json", `{"device_id":"1 OR 1=1"}`, 400, "device_id"},
			{"too large", "application/json", `{"device_id":1,"pad":"` + strings.Repeat("x", 10_000) + `"}`, 413, ""},
		} {
			r := b.do(http.MethodPost, path, b.admin, tt.contentType, []byte(tt.body))
			if r.status != tt.status {
				t.Errorf("%s: %d %s", tt.name, r.status, r.body)
				continue
			}
			if tt.field != "" && r.json(t)["field"] != tt.field {
				t.Errorf("%s: field %v in %s", tt.name, r.json(t)["field"], r.body)
			}
		}
		// An app that does not exist, with a device that does.
		if r := b.postJSON("/api/v1/apps/no-such-app-"+randomSuffix()+"/test-push", b.admin, map[string]any{"device_id": ownID}); r.status != http.StatusNotFound {
			t.Errorf("unknown app: %d %s", r.status, r.body)
		}
		// The other app's device, asked for through its own app, is its
		// own: that app has no credentials, so nothing reaches it either.
		r := b.postJSON("/api/v1/apps/"+otherSlug+"/test-push", b.admin, map[string]any{"device_id": ownID})
		if r.status != http.StatusUnprocessableEntity || r.json(t)["field"] != "device_id" {
			t.Errorf("this app's device through another app: %d %s", r.status, r.body)
		}

		// Nothing was sent, and nothing recorded.
		for name, token := range map[string]string{"own": ownToken, "inactive": goneToken, "other app's": otherToken} {
			if n := len(b.sim.Received("fcm", token)); n != 0 {
				t.Errorf("the %s device received %d pushes", name, n)
			}
		}
		for _, slug := range []string{b.appSlug, otherSlug} {
			res := b.do(http.MethodGet, "/api/v1/audit-log?action=app.test_push&object_id="+slug, b.admin, "", nil)
			if res.status != http.StatusOK || len(res.json(t)["items"].([]any)) != 0 {
				t.Errorf("test pushes recorded for %s: %d %s", slug, res.status, res.body)
			}
		}
	})

	t.Run("SubscriberConversations", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token, subID, _ := b.subscriberSession()
		sent := b.postJSON("/public/v1/conversation/messages", token, map[string]any{"body": "Where is my parcel?", "client_key": "k-" + randomSuffix()})
		if sent.status != http.StatusCreated {
			t.Fatalf("send: %d %s", sent.status, sent.body)
		}
		convID := int64(sent.json(t)["conversation_id"].(float64))
		path := fmt.Sprintf("/api/v1/subscribers/%d/conversations", subID)
		for _, key := range []string{b.admin, b.agent} {
			res := b.do(http.MethodGet, path, key, "", nil)
			if res.status != http.StatusOK {
				t.Fatalf("conversations: %d %s", res.status, res.body)
			}
			items := res.json(t)["items"].([]any)
			if len(items) != 1 {
				t.Fatalf("conversations: %s", res.body)
			}
			c := items[0].(map[string]any)
			if int64(c["id"].(float64)) != convID || int64(c["subscriber_id"].(float64)) != subID ||
				int64(c["app_id"].(float64)) != b.appID || c["status"] != "open" || c["unread"].(float64) != 1 {
				t.Errorf("conversation %v", c)
			}
		}
		if r := b.do(http.MethodGet, path, b.marketer, "", nil); r.status != http.StatusForbidden {
			t.Errorf("a marketer read conversations: %d %s", r.status, r.body)
		}
		if r := b.do(http.MethodGet, path, "", "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("without a key: %d", r.status)
		}
		// Someone who never wrote: an empty list.
		quiet, err := subscribers.Create(context.Background(), b.pool, subscribers.SubscriberParams{})
		if err != nil {
			t.Fatal(err)
		}
		res := b.do(http.MethodGet, fmt.Sprintf("/api/v1/subscribers/%d/conversations", quiet.ID), b.agent, "", nil)
		if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"items":[]}` {
			t.Errorf("no conversations: %d %s", res.status, res.body)
		}
		for _, id := range []string{"abc", "0", "-1", "1.5", "1e3", "0x10", "99999999999999999999", "%00", "%FF",
			"1%27%20OR%201%3D1", "%E2%80%AE1", "1;DROP%20TABLE%20conversations"} {
			r := b.do(http.MethodGet, "/api/v1/subscribers/"+id+"/conversations", b.admin, "", nil)
			if r.status/100 != 4 {
				t.Errorf("subscriber id %q: %d %s", id, r.status, r.body)
			}
		}
		// A subscriber that does not exist is not an error of the server.
		if r := b.do(http.MethodGet, "/api/v1/subscribers/9223372036854775807/conversations", b.admin, "", nil); r.status >= 500 {
			t.Errorf("unknown subscriber: %d %s", r.status, r.body)
		}
	})
}
