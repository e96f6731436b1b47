package web_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// TestTestSendThroughTheAPI: a marketer's test send reaches a confirmed
// member once, skips someone who left, is rate limited, and an admin can
// mark a staff member's device for test sends.
func TestTestSendThroughTheAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l, err := subscribers.GetList(ctx, b.pool, b.list)
	if err != nil {
		t.Fatal(err)
	}
	type person struct {
		id, device int64
		token      string
	}
	newPerson := func(confirmed bool) person {
		sub, err := subscribers.Create(ctx, b.pool, subscribers.SubscriberParams{})
		if err != nil {
			t.Fatal(err)
		}
		token := b.sim.NewFCMToken()
		d, err := subscribers.RegisterDevice(ctx, b.pool, sub.ID, b.appID, subscribers.DeviceParams{Platform: delivery.PlatformFCM, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		if confirmed {
			if _, err := subscribers.SetConfirmed(ctx, b.pool, l.ID, sub.ID); err != nil {
				t.Fatal(err)
			}
		}
		return person{id: sub.ID, device: d.ID, token: token}
	}
	m, s := newPerson(true), newPerson(false)
	member, stranger, memberToken, strangerToken := m.id, s.id, m.token, s.token

	id := int64(b.postJSON("/api/v1/campaigns", b.marketer, map[string]any{"app": b.appSlug, "name": "x",
		"content": map[string]any{"title": "Hi"}, "audience": map[string]any{"lists": []string{b.list}}}).json(t)["id"].(float64))
	path := fmt.Sprintf("/api/v1/campaigns/%d/test-send", id)
	r := b.postJSON(path, b.marketer, map[string]any{"subscriber_ids": []int64{member, member, stranger}})
	if r.status != http.StatusOK {
		t.Fatalf("test send: %d %s", r.status, r.body)
	}
	body := r.json(t)
	if len(body["results"].([]any)) != 1 || len(body["skipped"].([]any)) != 1 {
		t.Fatalf("test send answered %s", r.body)
	}
	if n := len(b.sim.Received("fcm", memberToken)); n != 1 {
		t.Fatalf("the member received %d", n)
	}
	if n := len(b.sim.Received("fcm", strangerToken)); n != 0 {
		t.Fatalf("someone with no consent received %d", n)
	}

	// A marketer may not mark test devices; an admin may.
	mark := fmt.Sprintf("/api/v1/subscribers/%d/devices/%d", stranger, s.device)
	if r := b.do(http.MethodPut, mark, b.marketer, "application/json", []byte(`{"test_device":true}`)); r.status != http.StatusForbidden {
		t.Fatalf("a marketer marked a test device: %d", r.status)
	}
	for _, bad := range []string{`{}`, `{"test_device":"yes"}`, `{"test_device":true,"x":1}`} {
		if r := b.do(http.MethodPut, mark, b.admin, "application/json", []byte(bad)); r.status/100 != 4 {
			t.Fatalf("%s: %d %s", bad, r.status, r.body)
		}
	}
	if r := b.do(http.MethodPut, fmt.Sprintf("/api/v1/subscribers/%d/devices/%d", member, s.device), b.admin, "application/json",
		[]byte(`{"test_device":true}`)); r.status != http.StatusNotFound {
		t.Fatalf("marked another subscriber's device: %d %s", r.status, r.body)
	}
	if r := b.do(http.MethodPut, mark, b.admin, "application/json", []byte(`{"test_device":true}`)); r.status != http.StatusOK {
		t.Fatalf("mark: %d %s", r.status, r.body)
	}
	if r := b.postJSON(path, b.marketer, map[string]any{"subscriber_ids": []int64{stranger}}); r.status != http.StatusOK ||
		len(r.json(t)["results"].([]any)) != 1 {
		t.Fatalf("test send to a test device: %d %s", r.status, r.body)
	}
	// Two sends so far; the rest of the minute's budget, then 429.
	for i := 2; i < campaigns.TestSendsPerMinute; i++ {
		if r := b.postJSON(path, b.marketer, map[string]any{"subscriber_ids": []int64{member}}); r.status != http.StatusOK {
			t.Fatalf("test send %d: %d %s", i+1, r.status, r.body)
		}
	}
	r = b.postJSON(path, b.marketer, map[string]any{"subscriber_ids": []int64{member}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %v %s", r.status, r.header, r.body)
	}

	// An agent sees which devices a person has, not their push addresses.
	view := b.do(http.MethodGet, fmt.Sprintf("/api/v1/subscribers/%d", member), b.agent, "", nil)
	if view.status != http.StatusOK {
		t.Fatalf("agent view: %d", view.status)
	}
	dev := view.json(t)["devices"].([]any)[0].(map[string]any)
	if _, ok := dev["token"]; ok || dev["address"] != "…"+memberToken[len(memberToken)-4:] {
		t.Fatalf("agent sees %v", dev)
	}
	admin := b.do(http.MethodGet, fmt.Sprintf("/api/v1/subscribers/%d", member), b.admin, "", nil).json(t)
	if admin["devices"].([]any)[0].(map[string]any)["token"] != memberToken {
		t.Fatalf("admin sees %v", admin["devices"])
	}
}
