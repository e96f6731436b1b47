package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// sseEvent is one Server-Sent Event as a client reads it.
type sseEvent struct{ id, event, data string }

// openStream connects to an event stream of app over a real connection and
// delivers its events until the test ends or close is called.
func (b *testBundle) openStream(app *fiber.App, path string, header http.Header) (events <-chan sseEvent, stop func()) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addrOf(app)+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header = header.Clone()
	req.Header.Set("X-Forwarded-For", "198.51.100.88")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b.t.Fatalf("stream %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.data != "" {
					out <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			}
		}
	}()
	b.t.Cleanup(cancel)
	return out, cancel
}

// next returns the next event on ch whose name is in names, skipping
// others, within 10 seconds.
func (b *testBundle) next(ch <-chan sseEvent, names ...string) sseEvent {
	b.t.Helper()
	return b.nextWhere(ch, func(sseEvent) bool { return true }, names...)
}

// nextWhere is next for events that also satisfy ok (other tests' events
// share the stream).
func (b *testBundle) nextWhere(ch <-chan sseEvent, want func(sseEvent) bool, names ...string) sseEvent {
	b.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				b.t.Fatal("the stream ended")
			}
			for _, n := range names {
				if e.event == n && want(e) {
					return e
				}
			}
		case <-deadline:
			b.t.Fatalf("no %v event within 10 s", names)
		}
	}
}

// subscriberSession makes a subscriber with an external id and an APNs
// device in the bundle's app, and returns their conversation token.
func (b *testBundle) subscriberSession() (token string, subscriberID int64, device subscribers.Device) {
	b.t.Helper()
	ext := "chat-" + randomSuffix()
	sub, err := subscribers.Create(context.Background(), b.pool, subscribers.SubscriberParams{ExternalID: &ext})
	if err != nil {
		b.t.Fatal(err)
	}
	d, err := subscribers.RegisterDevice(context.Background(), b.pool, sub.ID, b.appID, subscribers.DeviceParams{
		Platform: "apns", Token: b.sim.NewAPNsToken(false), APNsTopic: "com.example.app"})
	if err != nil {
		b.t.Fatal(err)
	}
	res := b.postJSON("/public/v1/conversation/session", "", map[string]any{"app": b.appSlug, "external_id": ext,
		"identity_hmac": optin.IdentityHMAC(b.identity, ext)})
	if res.status != http.StatusOK {
		b.t.Fatalf("session: %d %s", res.status, res.body)
	}
	return res.json(b.t)["token"].(string), sub.ID, *d
}

func TestConversationsThroughTheAPI(t *testing.T) {
	t.Parallel()

	t.Run("SubscriberWritesAgentsPickUpAndAnswer", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token, subID, device := b.subscriberSession()
		send := func(body, key string) *response {
			return b.postJSON("/public/v1/conversation/messages", token, map[string]any{"body": body, "client_key": key})
		}
		first := send("My order #17 has not arrived", "k1")
		if first.status != http.StatusCreated {
			t.Fatalf("send: %d %s", first.status, first.body)
		}
		if again := send("My order #17 has not arrived", "k1"); again.status != http.StatusOK ||
			again.json(t)["id"] != first.json(t)["id"] {
			t.Fatalf("retried send: %d %s", again.status, again.body)
		}
		convID := int64(first.json(t)["conversation_id"].(float64))
		// Two agents pick it up at once: exactly one wins.
		ann, bob := b.newUser(access.RoleAgent), b.newUser(access.RoleAgent)
		annSession, annCSRF := b.sessionFor(ann)
		bobSession, bobCSRF := b.sessionFor(bob)
		results := make(chan int, 2)
		for _, s := range [][2]string{{annSession, annCSRF}, {bobSession, bobCSRF}} {
			go func() {
				results <- b.send(b.app, request{method: http.MethodPost, path: fmt.Sprintf("/api/v1/conversations/%d/pick-up", convID),
					session: s[0], csrf: s[1], json: []byte("{}")}).status
			}()
		}
		got := map[int]int{<-results: 1}
		got[<-results]++
		if got[http.StatusOK] != 1 || got[http.StatusConflict] != 1 {
			t.Fatalf("pick-up answers %v: want one 200 and one 409", got)
		}
		// The inbox shows it, mine for whoever won.
		inbox := b.do(http.MethodGet, "/api/v1/conversations?assignee=any", b.agent, "", nil)
		if inbox.status != http.StatusOK || !bytes.Contains(inbox.body, []byte(fmt.Sprintf(`"id":%d,`, convID))) {
			t.Fatalf("inbox: %d %s", inbox.status, inbox.body)
		}
		// A bot's reply through an agent key, pushed to the device.
		reply := b.postJSON(fmt.Sprintf("/api/v1/conversations/%d/messages", convID), b.agent,
			map[string]any{"body": "It left our warehouse today.", "buttons": []map[string]any{{"label": "Thanks"}}})
		if reply.status != http.StatusCreated {
			t.Fatalf("reply: %d %s", reply.status, reply.body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pushes, err := b.sim.WaitReceived(ctx, "apns", device.Token, 1)
		if err != nil {
			t.Fatal(err)
		}
		var payload map[string]any
		json.Unmarshal(pushes[0].Payload, &payload)
		receipt, _ := payload["receipt"].(string)
		// The receipt and the button tap come back through the public API.
		if res := b.postJSON("/public/v1/receipts", "", map[string]any{"token": receipt, "event": "read"}); res.status != http.StatusNoContent {
			t.Fatalf("receipt: %d %s", res.status, res.body)
		}
		if res := b.postJSON("/public/v1/message-actions", "", map[string]any{"token": receipt, "button": "b0"}); res.status != http.StatusCreated {
			t.Fatalf("tap: %d %s", res.status, res.body)
		}
		msg := b.do(http.MethodGet, fmt.Sprintf("/api/v1/messages/%d", int64(reply.json(t)["id"].(float64))), b.agent, "", nil)
		if m := msg.json(t); m["read_at"] == nil || m["delivered_at"] == nil {
			t.Fatalf("message after receipts: %s", msg.body)
		}
		history := b.do(http.MethodGet, "/public/v1/conversation/messages", token, "", nil)
		var h struct{ Items []conversations.Message }
		json.Unmarshal(history.body, &h)
		if len(h.Items) != 3 || h.Items[1].AuthorName != "test agent" || h.Items[2].Body != "Thanks" {
			t.Fatalf("history: %s", history.body)
		}
		_ = subID
	})

	t.Run("AttachmentsReachOnlyTheirSubscriberAndTheirReaders", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token, _, _ := b.subscriberSession()
		other, _, _ := b.subscriberSession()
		up := b.do(http.MethodPost, "/public/v1/conversation/attachments", token, "image/png", pngBytes)
		if up.status != http.StatusCreated {
			t.Fatalf("upload: %d %s", up.status, up.body)
		}
		id := int64(up.json(t)["id"].(float64))
		if res := b.do(http.MethodGet, fmt.Sprintf("/public/v1/conversation/attachments/%d", id), other, "", nil); res.status != http.StatusNotFound {
			t.Fatalf("another subscriber: %d", res.status)
		}
		if res := b.do(http.MethodGet, fmt.Sprintf("/api/v1/attachments/%d", id), b.marketer, "", nil); res.status != http.StatusForbidden {
			t.Fatalf("a marketer: %d", res.status)
		}
		link := b.do(http.MethodGet, fmt.Sprintf("/api/v1/attachments/%d", id), b.agent, "", nil)
		if link.status != http.StatusOK {
			t.Fatalf("agent: %d %s", link.status, link.body)
		}
		url := strings.TrimPrefix(link.json(t)["url"].(string), "http://herald.test")
		file := b.do(http.MethodGet, url, "", "", nil)
		if file.status != http.StatusOK || !bytes.Equal(file.body, pngBytes) || file.header.Get("Content-Type") != "image/png" ||
			!strings.Contains(file.header.Get("Cache-Control"), "no-store") {
			t.Fatalf("file: %d %v", file.status, file.header)
		}
		if res := b.do(http.MethodGet, url[:len(url)-2]+"AA", "", "", nil); res.status != http.StatusNotFound {
			t.Fatalf("forged link: %d", res.status)
		}
	})
}

func TestLiveEvents(t *testing.T) {
	t.Parallel()

	t.Run("AnEventInOneProcessReachesAStreamOnAnotherAndResumes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// A second Herald: its own hub, its own LISTEN connection.
		second, stop := b.secondProcess()
		defer stop()
		admin := b.newUser(access.RoleAdmin)
		sid, _ := b.sessionFor(admin)
		header := http.Header{"Cookie": {"herald_session=" + sid}}
		events, closeStream := b.openStream(second, "/api/v1/events", header)
		token, subID, _ := b.subscriberSession()
		mine := func(e sseEvent) bool { return strings.Contains(e.data, fmt.Sprintf(`"subscriber_id":%d,`, subID)) }
		say := func(text string) {
			if res := b.postJSON("/public/v1/conversation/messages", token, map[string]any{"body": text}); res.status != http.StatusCreated {
				t.Fatalf("send: %d %s", res.status, res.body)
			}
		}
		say("first")
		first := b.nextWhere(events, mine, "conversation.message")
		if !strings.Contains(first.data, `"body":"first"`) || first.id == "" {
			t.Fatalf("event %+v", first)
		}
		closeStream()
		// Missed while away: two messages, then a reconnect with the last id.
		say("second")
		say("third")
		header.Set("Last-Event-ID", first.id)
		resumed, _ := b.openStream(second, "/api/v1/events", header)
		var got []string
		for len(got) < 2 {
			e := b.nextWhere(resumed, mine, "conversation.message")
			var ev struct {
				Data struct {
					Message struct{ Body string } `json:"message"`
				} `json:"data"`
			}
			json.Unmarshal([]byte(e.data), &ev)
			got = append(got, ev.Data.Message.Body)
		}
		if got[0] != "second" || got[1] != "third" {
			t.Fatalf("resumed with %v, want [second third]", got)
		}
		say("fourth")
		if e := b.nextWhere(resumed, mine, "conversation.message"); !strings.Contains(e.data, `"body":"fourth"`) {
			t.Fatalf("after the replay: %s", e.data)
		}
	})

	t.Run("TheSubscriberStreamCarriesRepliesButNeverNotes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token, _, _ := b.subscriberSession()
		res := b.postJSON("/public/v1/conversation/messages", token, map[string]any{"body": "hello?"})
		convID := int64(res.json(t)["conversation_id"].(float64))
		events, _ := b.openStream(b.app, "/public/v1/conversation/events?token="+token, http.Header{})
		b.postJSON(fmt.Sprintf("/api/v1/conversations/%d/messages", convID), b.agent, map[string]any{"body": "secret note", "private": true})
		b.postJSON(fmt.Sprintf("/api/v1/conversations/%d/messages", convID), b.agent, map[string]any{"body": "Hi, how can I help?"})
		e := b.nextWhere(events, func(e sseEvent) bool { return !strings.Contains(e.data, `"author":"subscriber"`) }, "message")
		if strings.Contains(e.data, "secret note") || !strings.Contains(e.data, "how can I help") || strings.Contains(e.data, "author_user_id") {
			t.Fatalf("subscriber stream: %s", e.data)
		}
		other, _, _ := b.subscriberSession()
		if res := b.do(http.MethodGet, "/public/v1/conversation/events?token="+other[:len(other)-2]+"xx", "", "", nil); res.status != http.StatusUnauthorized {
			t.Fatalf("forged stream token: %d", res.status)
		}
	})
}
