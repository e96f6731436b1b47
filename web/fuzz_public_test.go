package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/herald-im/herald/optin"
)

// The public JSON endpoints' fuzz targets go through the real fiber app and
// database. Whatever the body, the answer is never a 5xx, and a request not
// answered 2xx writes nothing. `go test` runs the seeds; `go test -fuzz
// FuzzPublicSubscribe ./web` searches further. Seeds hold placeholders
// ({{app}}, {{list}}, {{ext}}, {{hmac}}, {{token}}, {{fcm}}, {{webpush}},
// {{reply}}, {{campaign}}) that become the fuzz bundle's real values, so
// that valid requests reach the writes.

// hostileSeeds are bodies every public endpoint gets.
var hostileSeeds = []string{
	``, `{}`, `[]`, `null`, `"x"`, `{"app":null}`, `{"list":5}`, `{"a":1} {"b":2}`, `{"list":"x",`,
	strings.Repeat(`[`, 5000), `{"external_id":"\u0000","identity_hmac":"00"}`, "{\"list\":\"\xff\xfe\"}",
	`{"list":"\ud800"}`, `{"list":"\udc00x"}`, "{\"subscriber_token\":\"a\x00b\"}", `{"subscriber_token":"forged"}`,
	`{"app":"{{app}}","external_id":"{{ext}}","identity_hmac":"` + strings.Repeat("0", 64) + `"}`,
	`{"consent_version":1e400}`, `{"consent_version":-1}`, `{"timezone":"../../etc/passwd","locale":"` + strings.Repeat("x-", 500) + `"}`,
	`{"token":"{{reply}}","action":"a` + strings.Repeat("9", 30) + `"}`, `{"\u0000":1}`,
}

type fuzzTarget struct {
	once   sync.Once
	b      *testBundle
	values map[string]string
}

// bundle is the target's app, list, subscriber and campaign, made once.
func (ft *fuzzTarget) bundle(t *testing.T) *testBundle {
	ft.once.Do(func() {
		b := setup(t)
		ext := "fuzz-" + randomSuffix()
		hmac := optin.IdentityHMAC(b.identity, ext)
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "device": webPushDevice(b.webPushSubscription())})
		if res.status != http.StatusAccepted {
			t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
		_, _, data := b.testSendReply()
		ft.b, ft.values = b, map[string]string{
			"{{app}}": b.appSlug, "{{list}}": b.list, "{{ext}}": ext, "{{hmac}}": hmac,
			"{{token}}": res.json(t)["subscriber_token"].(string), "{{reply}}": data["reply_token"], "{{campaign}}": data["campaign"],
		}
	})
	if ft.b == nil {
		t.Fatal("the fuzz bundle failed to set up")
	}
	b := *ft.b
	b.t = t
	return &b
}

// writes counts what a public request may write. Confirmation tokens are
// left out: the confirmation job, not the request, writes them, a moment
// after a subscribe.
func (b *testBundle) writes() string {
	b.t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT count(*) FROM subscribers", "SELECT count(*) FROM devices", "SELECT count(*) FROM memberships",
		"SELECT count(*) FROM consent_records", "SELECT count(*) FROM subscriber_tokens",
		"SELECT count(*) FROM conversations", "SELECT count(*) FROM conversation_messages", "SELECT count(*) FROM campaign_replies",
		"SELECT coalesce(sum(replies), 0) FROM campaigns",
		"SELECT coalesce(sum((SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(action_taps))), 0) FROM campaigns",
		"SELECT count(*) FROM memberships WHERE status = 'unsubscribed'",
	} {
		var n int64
		if err := b.pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
			b.t.Fatal(err)
		}
		out = append(out, fmt.Sprint(n))
	}
	return strings.Join(out, " ")
}

func (ft *fuzzTarget) run(f *testing.F, path string, seeds ...string) {
	for _, s := range append(seeds, hostileSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := ft.bundle(t)
		s := string(body)
		for k, v := range ft.values {
			s = strings.ReplaceAll(s, k, v)
		}
		s = strings.ReplaceAll(s, "{{fcm}}", b.sim.NewFCMToken())
		if strings.Contains(s, "{{webpush}}") {
			dev, _ := json.Marshal(webPushDevice(b.webPushSubscription()))
			s = strings.ReplaceAll(s, "{{webpush}}", string(dev))
		}
		// Each request from its own address, so that failed proofs in one
		// do not rate limit the next.
		ip := fmt.Sprintf("10.%d.%d.%d", randomSuffix()[0], randomSuffix()[1], randomSuffix()[2])
		before := b.writes()
		res := b.doFrom(b.app, ip, http.MethodPost, path, "", "application/json", []byte(s))
		if res.status >= 500 {
			t.Fatalf("%s: %d %s\nbody: %q", path, res.status, res.body, s)
		}
		if res.status >= 300 {
			if after := b.writes(); after != before {
				t.Fatalf("%s answered %d but wrote: %s -> %s\nbody: %q", path, res.status, before, after, s)
			}
		}
	})
}

func FuzzPublicSubscribe(f *testing.F) {
	var ft fuzzTarget
	ft.run(f, "/public/v1/subscribe",
		`{"app":"{{app}}","list":"{{list}}","device":{"platform":"fcm","token":"{{fcm}}"}}`,
		`{"app":"{{app}}","list":"{{list}}","external_id":"{{ext}}","identity_hmac":"{{hmac}}","device":{"platform":"fcm","token":"{{fcm}}"}}`,
		`{"app":"{{app}}","list":"{{list}}","device":{{webpush}},"email":"ada@example.com","locale":"de-DE","timezone":"Europe/Berlin"}`,
		`{"app":"{{app}}","list":"{{list}}","subscriber_token":"{{token}}","device":{{webpush}}}`,
		`{"app":"{{app}}","list":"{{list}}","device":{"platform":"apns","token":"`+strings.Repeat("ab", 32)+`","bundle_id":"com.example.app"}}`,
		`{"app":"{{app}}","list":"{{list}}","device":{"platform":"fcm","token":"{{fcm}}"},"email":"a\u0000@example.com"}`,
		`{"app":"{{app}}","list":"{{list}}","device":{"platform":"webpush","subscription":{"endpoint":"http://x","keys":{}}}}`,
		`{"app":"{{app}}","list":"{{list}}","consent_version":99,"device":{"platform":"fcm","token":"{{fcm}}"}}`,
		`{"app":"{{app}}","list":"{{list}}","external_id":"{{ext}}","identity_hmac":"zz","device":{"platform":"fcm","token":"{{fcm}}"}}`,
	)
}

func FuzzPublicPreferences(f *testing.F) {
	var ft fuzzTarget
	ft.run(f, "/public/v1/preferences",
		`{"subscriber_token":"{{token}}"}`,
		`{"app":"{{app}}","external_id":"{{ext}}","identity_hmac":"{{hmac}}"}`,
		`{"app":"nope","external_id":"{{ext}}","identity_hmac":"{{hmac}}"}`,
		`{"subscriber_token":"{{token}}","list":"x"}`,
	)
}

func FuzzPublicUnsubscribe(f *testing.F) {
	var ft fuzzTarget
	ft.run(f, "/public/v1/unsubscribe",
		`{"subscriber_token":"{{token}}","list":"{{list}}"}`,
		`{"subscriber_token":"{{token}}","list":"no-such-list"}`,
		`{"app":"{{app}}","external_id":"{{ext}}","identity_hmac":"{{hmac}}"}`,
		`{"subscriber_token":"{{token}}","list":"\u0000"}`,
		`{"subscriber_token":"{{token}}"}`,
	)
}

func FuzzPublicCampaignActions(f *testing.F) {
	var ft fuzzTarget
	ft.run(f, "/public/v1/campaign-actions",
		`{"token":"{{reply}}","action":"a0"}`,
		`{"token":"{{campaign}}","action":"a0"}`,
		`{"token":"{{reply}}","action":"a1"}`,
		`{"token":"{{reply}}","action":"A0"}`,
		`{"token":"{{reply}}x","action":"a0"}`,
		`{"token":"{{reply}}","action":"a0","extra":1}`,
	)
}
