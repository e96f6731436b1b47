package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/optin"
)

// rowCounts is how many rows the tables a request may write hold.
func (b *testBundle) rowCounts() map[string]int {
	b.t.Helper()
	out := map[string]int{}
	for _, table := range []string{"subscribers", "devices", "memberships", "consent_records", "subscriber_tokens", "lists", "imports",
		"users", "access_links", "teams", "team_members", "settings", "api_keys", "audit_log", "outbox",
		"conversations", "conversation_messages", "message_deliveries", "attachments", "attachment_blobs", "canned_responses",
		"campaign_receipts", "conversation_viewers", "webhook_endpoints"} {
		var n int
		if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			b.t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// TestHostileInput sends bad requests to every handler that takes input and
// checks that each gets a clear 4xx problem naming what is wrong, and that
// nothing was written. It is not parallel, so row counts are its own.
func TestHostileInput(t *testing.T) {
	b := setup(t)
	wp := b.webPushSubscription()
	good := func(change func(m map[string]any)) []byte {
		m := map[string]any{"app": b.appSlug, "list": b.list, "device": webPushDevice(wp)}
		change(m)
		out, _ := json.Marshal(m)
		return out
	}
	badKeys := func(p256dh, auth string) func(m map[string]any) {
		return func(m map[string]any) {
			m["device"] = map[string]any{"platform": "webpush", "subscription": map[string]any{
				"endpoint": wp.Endpoint, "keys": map[string]string{"p256dh": p256dh, "auth": auth}}}
		}
	}
	ext := "user-" + randomSuffix()
	// Each subscriber call spends that subscriber's budget: the calls go
	// out as many subscribers, made here before the counts are taken.
	theirs := b.conversationFixture()
	rows, err := b.pool.Query(context.Background(), `INSERT INTO subscribers (state) SELECT 'active' FROM generate_series(1, 200) RETURNING id`)
	if err != nil {
		t.Fatal(err)
	}
	var callers []string
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		tok, _ := b.conv.SessionToken(id, b.appID)
		callers = append(callers, tok)
	}
	rows.Close()
	ctok := func() string {
		tok := callers[0]
		callers = callers[1:]
		return tok
	}
	tests := []struct {
		name        string
		method      string
		path        string
		key         string
		contentType string
		body        []byte
		status      int
		field       string
	}{
		{"malformed json", "POST", "/public/v1/subscribe", "", "application/json", []byte(`{"list": "x",`), 400, "body"},
		{"not json at all", "POST", "/public/v1/subscribe", "", "application/json", []byte(`<xml/>`), 400, "body"},
		{"trailing data", "POST", "/public/v1/subscribe", "", "application/json", []byte(`{"list":"x"} {"list":"y"}`), 400, "body"},
		{"wrong type", "POST", "/public/v1/subscribe", "", "application/json", []byte(`{"list": 5}`), 400, "list"},
		{"unknown field", "POST", "/public/v1/subscribe", "", "application/json", []byte(`{"list":"x","admin":true}`), 400, "admin"},
		{"oversized body", "POST", "/public/v1/subscribe", "", "application/json", []byte(`{"list":"` + strings.Repeat("a", 10000) + `"}`), 413, ""},
		{"wrong content type", "POST", "/public/v1/subscribe", "", "application/xml", []byte(`{}`), 415, ""},
		{"missing list", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { delete(m, "list") }), 422, "list"},
		{"unknown list", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["list"] = "nope-nope" }), 422, "list"},
		{"unknown app", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["app"] = "nope" }), 422, "app"},
		{"invalid time zone", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["timezone"] = "Mars/Olympus_Mons" }), 422, "timezone"},
		{"time zone path trick", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["timezone"] = "../../etc/passwd" }), 422, "timezone"},
		{"invalid locale", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["locale"] = "not a locale!" }), 422, "locale"},
		{"invalid email", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["email"] = "Ada <ada@example.com>" }), 422, "email"},
		{"consent version from the future", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["consent_version"] = 99 }), 422, "consent_version"},
		{"push endpoint not https", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) {
			m["device"] = map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": "http://evil.example/x",
				"keys": map[string]string{"p256dh": wp.P256dh, "auth": wp.Auth}}}
		}), 422, "device.subscription.endpoint"},
		{"push key not on curve", "POST", "/public/v1/subscribe", "", "application/json", good(badKeys("BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", wp.Auth)), 422, "device.subscription.keys"},
		{"push auth too short", "POST", "/public/v1/subscribe", "", "application/json", good(badKeys(wp.P256dh, "AAAA")), 422, "device.subscription.keys"},
		{"push subscription missing", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["device"] = map[string]any{"platform": "webpush"} }), 422, "device.subscription"},
		{"unknown platform", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["device"] = map[string]any{"platform": "pager", "token": "x"} }), 422, "device.platform"},
		{"apns token not hex", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) {
			m["device"] = map[string]any{"platform": "apns", "token": strings.Repeat("z", 64), "bundle_id": "com.example.app"}
		}), 422, "device.token"},
		{"fcm token with spaces", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) {
			m["device"] = map[string]any{"platform": "fcm", "token": "a token with spaces in it"}
		}), 422, "device.token"},
		{"wrong identity hmac", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) {
			m["external_id"], m["identity_hmac"] = ext, optin.IdentityHMAC("not-the-secret", ext)
		}), 403, "identity_hmac"},
		{"identity hmac not hex", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) {
			m["external_id"], m["identity_hmac"] = ext, "zz"
		}), 403, "identity_hmac"},
		{"forged subscriber token", "POST", "/public/v1/subscribe", "", "application/json", good(func(m map[string]any) { m["subscriber_token"] = "forged" }), 401, "subscriber_token"},
		{"forged token for preferences", "POST", "/public/v1/preferences", "", "application/json", []byte(`{"subscriber_token":"forged"}`), 401, "subscriber_token"},
		{"admin without key", "POST", "/api/v1/lists", "", "application/json", []byte(`{"slug":"x","name":"x"}`), 401, ""},
		{"admin with made-up key", "POST", "/api/v1/lists", "hk_abcdefgh_" + strings.Repeat("a", 32), "application/json", []byte(`{"slug":"x","name":"x"}`), 401, ""},
		{"agent may not create lists", "POST", "/api/v1/lists", b.agent, "application/json", []byte(`{"slug":"x","name":"x"}`), 403, ""},
		{"list slug with spaces", "POST", "/api/v1/lists", b.admin, "application/json", []byte(`{"slug":"a b","name":"x"}`), 422, "slug"},
		{"list without name", "POST", "/api/v1/lists", b.admin, "application/json", []byte(`{"slug":"ok-slug"}`), 422, "name"},
		{"list bad optin", "POST", "/api/v1/lists", b.admin, "application/json", []byte(`{"slug":"ok-slug","name":"x","optin":"triple"}`), 422, "optin"},
		{"subscriber attributes not an object", "POST", "/api/v1/subscribers", b.admin, "application/json", []byte(`{"attributes":[1,2]}`), 422, "attributes"},
		{"subscriber attributes with NUL", "POST", "/api/v1/subscribers", b.admin, "application/json", []byte(`{"attributes":{"a":"\u0000"}}`), 422, "attributes.a"},
		{"subscriber bad state", "POST", "/api/v1/subscribers", b.admin, "application/json", []byte(`{"state":"erased"}`), 422, "state"},
		{"subscriber id not a number", "GET", "/api/v1/subscribers/abc", b.admin, "", nil, 422, "id"},
		{"bad page size", "GET", "/api/v1/subscribers?limit=100000", b.admin, "", nil, 422, "limit"},
		{"bad cursor", "GET", "/api/v1/subscribers?after=-5", b.admin, "", nil, 422, "after"},
		{"import not csv", "POST", "/api/v1/imports", b.admin, "application/json", []byte(`{}`), 415, ""},
		{"import empty", "POST", "/api/v1/imports", b.admin, "text/csv", nil, 422, "file"},
		{"import unknown column", "POST", "/api/v1/imports", b.admin, "text/csv", []byte("external_id,password\n1,x\n"), 422, "file"},
		{"import header broken quoting", "POST", "/api/v1/imports", b.admin, "text/csv", []byte("\"external_id,email\n1,a@b.c\n"), 422, "file"},
		{"import lists without consent source", "POST", "/api/v1/imports", b.admin, "text/csv", []byte("external_id,lists\n1,news\n"), 422, "file"},
		{"import marketer ok but agent not", "POST", "/api/v1/imports", b.agent, "text/csv", []byte("external_id\n1\n"), 403, ""},
		{"invitation without role", "POST", "/api/v1/invitations", b.admin, "application/json", []byte(`{"email":"x@example.com"}`), 422, "role"},
		{"invitation with a bad address", "POST", "/api/v1/invitations", b.admin, "application/json", []byte(`{"email":"Ada <ada@example.com>","role":"agent"}`), 422, "email"},
		{"invitation with a long name", "POST", "/api/v1/invitations", b.admin, "application/json", []byte(`{"email":"x@example.com","role":"agent","name":"` + strings.Repeat("n", 201) + `"}`), 422, "name"},
		{"invitation by a marketer", "POST", "/api/v1/invitations", b.marketer, "application/json", []byte(`{"email":"x@example.com","role":"admin"}`), 403, ""},
		{"user id not a number", "PATCH", "/api/v1/users/abc", b.admin, "application/json", []byte(`{"name":"x"}`), 422, "id"},
		{"unknown role for a user", "PATCH", "/api/v1/users/1", b.admin, "application/json", []byte(`{"role":"root"}`), 422, "role"},
		{"team without name", "POST", "/api/v1/teams", b.admin, "application/json", []byte(`{}`), 422, "name"},
		{"team member id not a number", "PUT", "/api/v1/teams/1/members/x", b.admin, "", nil, 422, "user"},
		{"security setting missing", "PUT", "/api/v1/settings/security", b.admin, "application/json", []byte(`{}`), 422, "require_admin_totp"},
		{"audit log bad time", "GET", "/api/v1/audit-log?since=yesterday", b.admin, "", nil, 422, "since"},
		{"audit log bad actor type", "GET", "/api/v1/audit-log?actor_type=root", b.admin, "", nil, 422, "actor_type"},
		{"audit log bad cursor", "GET", "/api/v1/audit-log?before=-1", b.admin, "", nil, 422, "before"},
		{"audit log page too big", "GET", "/api/v1/audit-log?limit=501", b.admin, "", nil, 422, "limit"},
		{"empty message", "POST", "/public/v1/conversation/messages", ctok(), "application/json", []byte(`{"body":"  "}`), 422, "body"},
		{"message too long", "POST", "/public/v1/conversation/messages", ctok(), "application/json", []byte(`{"body":"` + strings.Repeat("x", 4001) + `"}`), 422, "body"},
		{"oversized message body", "POST", "/public/v1/conversation/messages", ctok(), "application/json", []byte(`{"body":"` + strings.Repeat("x", 9000) + `"}`), 413, ""},
		{"message unknown field", "POST", "/public/v1/conversation/messages", ctok(), "application/json", []byte(`{"body":"x","author":"agent"}`), 400, "author"},
		{"message key with spaces", "POST", "/public/v1/conversation/messages", ctok(), "application/json", []byte(`{"body":"x","client_key":"a b"}`), 422, "client_key"},
		{"another subscriber's attachment sent", "POST", "/public/v1/conversation/messages", ctok(), "application/json", []byte(fmt.Sprintf(`{"attachment_id":%d}`, theirs.attachmentID)), 422, "attachment_id"},
		{"another subscriber's attachment read", "GET", fmt.Sprintf("/public/v1/conversation/attachments/%d", theirs.attachmentID), ctok(), "", nil, 404, ""},
		{"forged conversation token", "GET", "/public/v1/conversation/messages", "cs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", nil, 401, "token"},
		{"no conversation token", "POST", "/public/v1/conversation/messages", "", "application/json", []byte(`{"body":"x"}`), 401, ""},
		{"history bad cursor", "GET", "/public/v1/conversation/messages?before=-4", ctok(), "", nil, 422, "before"},
		{"read without id", "POST", "/public/v1/conversation/read", ctok(), "application/json", []byte(`{}`), 422, "up_to"},
		{"file of the wrong type", "POST", "/public/v1/conversation/attachments", ctok(), "image/png", []byte("MZ\x90\x00 this is an executable"), 422, "file"},
		{"html as an image", "POST", "/public/v1/conversation/attachments", ctok(), "image/png", []byte("<html><script>alert(1)</script></html>"), 422, "file"},
		{"empty file", "POST", "/public/v1/conversation/attachments", ctok(), "image/png", []byte{}, 422, "file"},
		{"oversized file", "POST", "/public/v1/conversation/attachments", ctok(), "image/png", append(append([]byte{}, pngBytes...), make([]byte, 10<<20)...), 413, ""},
		{"forged attachment link", "GET", "/public/v1/attachments/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", "", nil, 404, ""},
		{"forged receipt token", "POST", "/public/v1/receipts", "", "application/json", []byte(`{"token":"m_AAAAAAAAAAAAAAAAAAAAAAAAAAAA","event":"read"}`), 422, "token"},
		{"forged campaign receipt", "POST", "/public/v1/receipts", "", "application/json", []byte(`{"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAA","event":"delivered"}`), 422, "token"},
		{"receipt of an unknown kind", "POST", "/public/v1/receipts", "", "application/json", []byte(`{"token":"m_x","event":"opened"}`), 422, "event"},
		{"forged button token", "POST", "/public/v1/message-actions", "", "application/json", []byte(`{"token":"m_AAAAAAAAAAAAAAAAAAAAAAAAAAAA","button":"b0"}`), 422, "token"},
		{"session for an unknown app", "POST", "/public/v1/conversation/session", "", "application/json", []byte(`{"app":"nope-nope","subscriber_token":"x"}`), 422, "app"},
		{"session without proof", "POST", "/public/v1/conversation/session", "", "application/json", []byte(`{"app":"` + b.appSlug + `"}`), 422, "subscriber_token"},
		{"reply too long", "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", theirs.conversationID), b.agent, "application/json", []byte(`{"body":"` + strings.Repeat("x", 4001) + `"}`), 422, "body"},
		{"reply with four buttons", "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", theirs.conversationID), b.agent, "application/json", []byte(`{"body":"x","buttons":[{"label":"a"},{"label":"b"},{"label":"c"},{"label":"d"}]}`), 422, "buttons"},
		{"note with buttons", "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", theirs.conversationID), b.agent, "application/json", []byte(`{"body":"x","private":true,"buttons":[{"label":"a"}]}`), 422, "buttons"},
		{"button link not http", "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", theirs.conversationID), b.agent, "application/json", []byte(`{"body":"x","buttons":[{"label":"a","url":"javascript:alert(1)"}]}`), 422, "buttons[0].url"},
		{"unknown canned response", "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", theirs.conversationID), b.agent, "application/json", []byte(`{"canned_response_id":999999999}`), 422, "canned_response_id"},
		{"reply to no conversation", "POST", "/api/v1/conversations/999999999/messages", b.agent, "application/json", []byte(`{"body":"x"}`), 404, ""},
		{"bad label", "PUT", fmt.Sprintf("/api/v1/conversations/%d/labels", theirs.conversationID), b.agent, "application/json", []byte(`{"labels":["ok","<b>"]}`), 422, "labels[1]"},
		{"snooze into the past", "POST", fmt.Sprintf("/api/v1/conversations/%d/snooze", theirs.conversationID), b.agent, "application/json", []byte(`{"until":"2001-01-01T00:00:00Z"}`), 422, "until"},
		{"assign to a marketer or nobody", "POST", fmt.Sprintf("/api/v1/conversations/%d/assign", theirs.conversationID), b.agent, "application/json", []byte(`{"assignee_id":999999999}`), 422, "assignee_id"},
		{"assign nothing", "POST", fmt.Sprintf("/api/v1/conversations/%d/assign", theirs.conversationID), b.agent, "application/json", []byte(`{}`), 422, "assignee_id"},
		{"inbox bad status", "GET", "/api/v1/conversations?status=closed", b.agent, "", nil, 422, "status"},
		{"inbox bad cursor", "GET", "/api/v1/conversations?after=yesterday", b.agent, "", nil, 422, "after"},
		{"inbox bad assignee", "GET", "/api/v1/conversations?assignee=everyone", b.agent, "", nil, 422, "assignee"},
		{"search without words", "GET", "/api/v1/conversations/search", b.agent, "", nil, 422, "q"},
		{"canned bad short code", "POST", "/api/v1/canned-responses", b.agent, "application/json", []byte(`{"short_code":"Hi There","title":"t","body":"b"}`), 422, "short_code"},
		{"canned missing body", "POST", "/api/v1/canned-responses", b.agent, "application/json", []byte(`{"short_code":"hi"}`), 422, "short_code"},
		{"availability of an API key", "PUT", "/api/v1/agents/me", b.agent, "application/json", []byte(`{"available":true}`), 422, "available"},
		{"transactional without key", "POST", "/api/v1/messages", b.agent, "application/json", []byte(`{"app":"` + b.appSlug + `","subscriber_id":1,"body":"x"}`), 422, "idempotency_key"},
		{"transactional to nobody", "POST", "/api/v1/messages", b.agent, "application/json", []byte(`{"app":"` + b.appSlug + `","subscriber_id":999999999,"idempotency_key":"k","body":"x"}`), 422, "subscriber_id"},
		{"transactional without app", "POST", "/api/v1/messages", b.agent, "application/json", []byte(`{"subscriber_id":1,"idempotency_key":"k","body":"x"}`), 422, "app"},
		{"transactional ttl too long", "POST", "/api/v1/messages", b.agent, "application/json", []byte(`{"app":"` + b.appSlug + `","subscriber_id":1,"idempotency_key":"k","body":"x","ttl_seconds":99999999}`), 422, "ttl_seconds"},
		{"keywords too many", "PUT", "/api/v1/lists/" + b.list + "/keywords", b.admin, "application/json", []byte(`{"stop":["a","b","c","d","e","f","g","h","i","j","k"]}`), 422, "stop"},
		{"webhook not http", "POST", "/api/v1/webhooks", b.admin, "application/json", []byte(`{"url":"ftp://crm.example.com/x"}`), 422, "url"},
		{"webhook with a password", "POST", "/api/v1/webhooks", b.admin, "application/json", []byte(`{"url":"https://u:p@crm.example.com/x"}`), 422, "url"},
		{"webhook unknown event", "POST", "/api/v1/webhooks", b.admin, "application/json", []byte(`{"url":"https://crm.example.com/x","events":["everything"]}`), 422, "events[0]"},
		{"webhook rotation too long", "POST", "/api/v1/webhooks/999999999/rotate-secret", b.admin, "application/json", []byte(`{"overlap_seconds":99999999}`), 422, "overlap_seconds"},
		{"keyword a sentence", "PUT", "/api/v1/lists/" + b.list + "/keywords", b.admin, "application/json", []byte(`{"help":["please help me"]}`), 422, "help[0]"},
		{"inbox limit too big", "GET", "/api/v1/conversations?limit=201", b.agent, "", nil, 422, "limit"},
		{"inbox limit zero", "GET", "/api/v1/conversations?limit=0", b.agent, "", nil, 422, "limit"},
		{"search limit too big", "GET", "/api/v1/conversations/search?q=hello&limit=101", b.agent, "", nil, 422, "limit"},
		{"messages limit too big", "GET", fmt.Sprintf("/api/v1/conversations/%d/messages?limit=201", theirs.conversationID), b.agent, "", nil, 422, "limit"},
		{"webhook log limit too big", "GET", "/api/v1/webhooks/999999999/deliveries?limit=201", b.admin, "", nil, 422, "limit"},
		{"audit log unknown actor type", "GET", "/api/v1/audit-log?actor_type=robot", b.admin, "", nil, 422, "actor_type"},
	}
	// Text PostgreSQL cannot store, in every body-taking route and query
	// parameter: each is a 422 naming the field, never a 500 (22021, 22P05).
	// § in a body or path is where the hostile text goes.
	hostileJSON := []struct{ name, text string }{
		{"raw NUL", "a\x00b"}, {"escaped NUL", `a\u0000b`}, {"invalid UTF-8", "a\xff\xfeb"},
		{"UTF-8 surrogate", "a\xed\xa0\x80b"}, {"lone high surrogate", `a\ud800b`}, {"lone low surrogate", `a\udc00b`},
		{"high surrogate then text", `\ud83dxx`},
	}
	bodies := []struct{ method, path, key, body, field string }{
		{"POST", "/public/v1/subscribe", "", `{"app":"` + b.appSlug + `","list":"` + b.list + `","device":{"platform":"fcm","token":"§"}}`, "device.token"},
		{"POST", "/public/v1/subscribe", "", `{"app":"` + b.appSlug + `","list":"§","device":{"platform":"fcm","token":"aaaaaaaaaaaaaaaaaaaa"}}`, "list"},
		{"POST", "/public/v1/subscribe", "", `{"list":"x","timezone":"§"}`, "timezone"},
		{"POST", "/public/v1/subscribe", "", `{"list":"x","device":{"platform":"webpush","subscription":{"endpoint":"https://push.example/§","keys":{"p256dh":"a","auth":"b"}}}}`, "device.subscription.endpoint"},
		{"POST", "/public/v1/preferences", "", `{"subscriber_token":"§"}`, "subscriber_token"},
		{"POST", "/public/v1/unsubscribe", "", `{"app":"` + b.appSlug + `","external_id":"§","identity_hmac":"00"}`, "external_id"},
		{"POST", "/public/v1/unsubscribe", "", `{"subscriber_token":"t","list":"§"}`, "list"},
		{"POST", "/public/v1/campaign-actions", "", `{"token":"t","action":"§"}`, "action"},
		{"POST", "/public/v1/campaign-actions", "", `{"§":"x"}`, "body"},
		{"POST", "/api/v1/lists", b.admin, `{"slug":"ok-slug","name":"§"}`, "name"},
		{"PATCH", "/api/v1/lists/" + b.list, b.admin, `{"consent_text":"§"}`, "consent_text"},
		{"PUT", "/api/v1/lists/" + b.list + "/subscribers/1", b.admin, `{"status":"§"}`, "status"},
		{"POST", "/api/v1/subscribers", b.admin, `{"email":"§"}`, "email"},
		{"POST", "/api/v1/subscribers", b.admin, `{"attributes":{"plan":{"tier":"§"}}}`, "attributes.plan.tier"},
		{"PATCH", "/api/v1/subscribers/1", b.admin, `{"external_id":"§"}`, "external_id"},
		{"POST", "/api/v1/campaigns", b.admin, `{"app":"` + b.appSlug + `","name":"n","content":{"title":"t","actions":[{"label":"ok"},{"label":"§"}]}}`, "content.actions[1].label"},
		{"POST", "/api/v1/campaigns", b.admin, `{"name":"n","audience":{"lists":["` + b.list + `"],"segment":{"attr":"§","op":"exists"}}}`, "audience.segment.attr"},
		{"PATCH", "/api/v1/campaigns/1", b.admin, `{"name":"§"}`, "name"},
		{"POST", "/api/v1/campaigns/1/test-send", b.admin, `{"subscriber_ids":[1],"§":1}`, "body"},
		{"POST", "/api/v1/campaigns/1/retry-failed", b.admin, `{"include_unknown":"§"}`, "include_unknown"},
		{"POST", "/api/v1/apps", b.admin, `{"slug":"ok-app","name":"§"}`, "name"},
		{"PUT", "/api/v1/apps/" + b.appSlug + "/credentials/apns", b.admin, `{"key_p8":"§","key_id":"k","team_id":"t","topic":"x"}`, "key_p8"},
		{"PUT", "/api/v1/apps/" + b.appSlug + "/credentials/fcm", b.admin, `{"service_account_json":"§"}`, "service_account_json"},
		{"PUT", "/api/v1/apps/" + b.appSlug + "/credentials/vapid", b.admin, `{"public_key":"§","private_key":"x"}`, "public_key"},
		{"POST", "/api/v1/api-keys", b.admin, `{"name":"§","role":"admin"}`, "name"},
		{"POST", "/api/v1/invitations", b.admin, `{"email":"§@example.com","name":"n","role":"agent"}`, "email"},
		{"POST", "/api/v1/invitations", b.admin, `{"email":"a@example.com","name":"§","role":"agent"}`, "name"},
		{"POST", "/api/v1/invitations", b.admin, `{"email":"a@example.com","name":"n","role":"§"}`, "role"},
		{"PATCH", "/api/v1/users/1", b.admin, `{"name":"§"}`, "name"},
		{"POST", "/api/v1/teams", b.admin, `{"name":"§"}`, "name"},
		{"POST", "/api/v1/teams", b.admin, `{"name":"t","description":"§"}`, "description"},
		{"PATCH", "/api/v1/teams/1", b.admin, `{"name":"§"}`, "name"},
		{"PUT", "/api/v1/settings/security", b.admin, `{"require_admin_totp":"§"}`, "require_admin_totp"},
		{"POST", "/api/v1/conversations/" + fmt.Sprint(theirs.conversationID) + "/messages", b.agent, `{"body":"§"}`, "body"},
		{"POST", "/api/v1/canned-responses", b.agent, `{"short_code":"hi","title":"§","body":"b"}`, "title"},
		{"POST", "/api/v1/webhooks", b.admin, `{"url":"https://crm.example.com/x","description":"§"}`, "description"},
		{"POST", "/api/v1/messages", b.agent, `{"app":"` + b.appSlug + `","subscriber_id":1,"idempotency_key":"k","body":"§"}`, "body"},
	}
	// The subscriber's message, from as many subscribers as there are cases.
	for _, h := range hostileJSON {
		tests = append(tests, struct {
			name        string
			method      string
			path        string
			key         string
			contentType string
			body        []byte
			status      int
			field       string
		}{h.name + " in a subscriber's message", "POST", "/public/v1/conversation/messages", ctok(), "application/json",
			[]byte(`{"body":"` + h.text + `"}`), 422, "body"})
	}
	for _, r := range bodies {
		for _, h := range hostileJSON {
			tests = append(tests, struct {
				name        string
				method      string
				path        string
				key         string
				contentType string
				body        []byte
				status      int
				field       string
			}{h.name + " in " + r.method + " " + r.path + " " + r.field, r.method, r.path, r.key, "application/json",
				[]byte(strings.ReplaceAll(r.body, "§", h.text)), 422, r.field})
		}
	}
	hostileQuery := []string{"%00", "a%00b", "%FF", "%C0%80", "%ED%A0%80"}
	queries := []struct{ method, path, key, contentType, body, field string }{
		{"GET", "/api/v1/lists?visibility=§", b.admin, "", "", "visibility"},
		{"GET", "/api/v1/subscribers?email=§", b.agent, "", "", "email"},
		{"GET", "/api/v1/subscribers?external_id=§", b.agent, "", "", "external_id"},
		{"GET", "/api/v1/subscribers?list=§&status=confirmed", b.agent, "", "", "list"},
		{"GET", "/api/v1/subscribers?state=§", b.agent, "", "", "state"},
		{"GET", "/api/v1/subscribers?limit=§", b.agent, "", "", "limit"},
		{"GET", "/api/v1/subscribers?§=1", b.agent, "", "", "query"},
		{"GET", "/api/v1/campaigns?status=§", b.admin, "", "", "status"},
		{"GET", "/api/v1/campaigns/1/deliveries?reason=§", b.admin, "", "", "reason"},
		{"POST", "/api/v1/imports?filename=§", b.admin, "text/csv", "external_id\nx\n", "filename"},
		{"GET", "/l/" + b.list + "?app=§", "", "", "", "app"},
		{"POST", "/public/v1/subscribe?list=§", "", "application/json", `{"list":"x"}`, "list"},
		{"POST", "/preferences/t", "", "application/x-www-form-urlencoded", "list=§", "list"},
		{"GET", "/api/v1/audit-log?action=§", b.admin, "", "", "action"},
		{"GET", "/api/v1/audit-log?object_id=§", b.admin, "", "", "object_id"},
	}
	for _, q := range queries {
		for _, h := range hostileQuery {
			tests = append(tests, struct {
				name        string
				method      string
				path        string
				key         string
				contentType string
				body        []byte
				status      int
				field       string
			}{h + " in " + q.method + " " + q.path, q.method, strings.ReplaceAll(q.path, "§", h), q.key, q.contentType,
				[]byte(strings.ReplaceAll(q.body, "§", h)), 422, q.field})
		}
	}
	before := b.rowCounts()
	for _, tt := range tests {
		res := b.do(tt.method, tt.path, tt.key, tt.contentType, tt.body)
		if res.status != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.name, res.status, tt.status, res.body)
			continue
		}
		if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: content type %q", tt.name, ct)
			continue
		}
		p := res.json(t)
		if p["title"] == "" || (tt.field != "" && p["field"] != tt.field) || (tt.field != "" && p["reason"] == "") {
			t.Errorf("%s: problem %s, want field %q with a reason", tt.name, res.body, tt.field)
		}
	}
	if after := b.rowCounts(); !equalCounts(before, after) {
		t.Errorf("hostile requests wrote rows: before %v after %v", before, after)
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestHostileLinks checks forged, tampered, expired and reused links get a
// page a person understands and change nothing.
func TestHostileLinks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A link signed with this secret but expired a day ago.
	past := optin.NewService(b.pool, dbtest.Inserter(b.pool), b.store, nil, nil, optin.Config{
		PublicURL: b.cfg.PublicURL, Secret: b.cfg.Secret, UnsubscribeTokenTTL: time.Hour,
		Now: func() time.Time { return time.Now().Add(-25 * time.Hour) },
	}, nil)
	// Nobody has this id: the links act on no one of the package's tests.
	const nobody = 1 << 40
	expired := b.pathOf(past.UnsubscribeURL(nobody, 0))
	valid := b.pathOf(b.optin.UnsubscribeURL(1, 0))
	tampered := valid[:len(valid)-3] + "AAA"
	otherSecret := optin.NewService(b.pool, dbtest.Inserter(b.pool), b.store, nil, nil, optin.Config{PublicURL: b.cfg.PublicURL,
		Secret: []byte("another-secret-another-secret-another!!"), UnsubscribeTokenTTL: time.Hour}, nil)
	tests := []struct {
		name, method, path string
		status             int
		text               string
	}{
		{"forged confirm", "GET", "/confirm/forged", 404, "not valid"},
		{"forged confirm press", "POST", "/confirm/forged", 404, "not valid"},
		{"unsubscribe link used as confirm", "POST", "/confirm/" + strings.TrimPrefix(valid, "/u/"), 404, "not valid"},
		{"tampered unsubscribe", "POST", tampered, 404, "not valid"},
		{"other secret", "POST", b.pathOf(otherSecret.UnsubscribeURL(1, 0)), 404, "not valid"},
		// Unsubscribing always works: an authentic link past its expiry too.
		{"expired unsubscribe", "POST", expired, 200, "You are unsubscribed"},
		{"expired preferences", "GET", b.pathOf(past.PreferencesURL(nobody)), 200, "Leave every list"},
		{"very long token", "GET", "/confirm/" + strings.Repeat("A", 5000), 404, "not valid"},
	}
	for _, tt := range tests {
		res := b.do(tt.method, tt.path, "", "application/x-www-form-urlencoded", nil)
		if res.status != tt.status || !strings.Contains(string(res.body), tt.text) {
			t.Errorf("%s: %d %s", tt.name, res.status, res.body)
		}
	}
}

// FuzzSubscribe throws arbitrary bodies at the public subscribe endpoint:
// whatever comes in, the answer is never a 5xx.
func FuzzSubscribe(f *testing.F) {
	f.Add([]byte(`{"list":"news","device":{"platform":"fcm","token":"aaaaaaaaaaaaaaaaaaaa"}}`))
	f.Add([]byte(`{"list":"news","device":{"platform":"webpush","subscription":{"endpoint":"https://x/y","keys":{"p256dh":"AAAA","auth":"AAAA"}}}}`))
	f.Add([]byte(`{"external_id":"\u0000","identity_hmac":"00"}`))
	f.Add([]byte(`{"timezone":"Local","locale":"x-x-x-x-x-x-x-x-x-x-x-x"}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := setup(t)
		for _, path := range []string{"/public/v1/subscribe", "/public/v1/preferences", "/public/v1/unsubscribe"} {
			res := b.do(http.MethodPost, path, "", "application/json", body)
			if res.status >= 500 {
				t.Fatalf("%s: %d %s", path, res.status, res.body)
			}
		}
	})
}
