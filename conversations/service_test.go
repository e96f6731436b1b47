package conversations_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

func TestService(t *testing.T) {
	t.Parallel()
	public := audit.Public(netip.MustParseAddr("192.0.2.1"))

	t.Run("ARetriedSendLandsOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		req := conversations.SendRequest{Body: "Where is my parcel?", ClientKey: "k-" + randomID()}
		first, created, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, req)
		if err != nil || !created {
			t.Fatalf("first send: %v %v", created, err)
		}
		again, created, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, req)
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("retried send: created %v, id %d (first %d), %v", created, again.ID, first.ID, err)
		}
		conv, err := b.svc.SubscriberConversation(b.ctx, m.id, b.app.ID)
		if err != nil || conv.Unread != 1 || conv.Status != conversations.StatusOpen || conv.WaitingSince == nil {
			t.Fatalf("conversation %+v, %v: want open, one unread, waiting", conv, err)
		}
	})

	t.Run("HostileMessagesAreRefusedAndWriteNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		for _, c := range []struct {
			req   conversations.SendRequest
			field string
		}{
			{conversations.SendRequest{Body: ""}, "body"},
			{conversations.SendRequest{Body: "   "}, "body"},
			{conversations.SendRequest{Body: "nul\x00byte"}, "body"},
			{conversations.SendRequest{Body: "bad \xff utf-8"}, "body"},
			{conversations.SendRequest{Body: strings.Repeat("x", conversations.MaxBodyChars+1)}, "body"},
			{conversations.SendRequest{Body: "ok", ClientKey: strings.Repeat("k", 101)}, "client_key"},
			{conversations.SendRequest{Body: "ok", ClientKey: "spaces are not keys"}, "client_key"},
			{conversations.SendRequest{Body: "ok", AttachmentID: ptr(int64(1 << 40))}, "attachment_id"},
		} {
			_, _, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, c.req)
			if ie, ok := invalid.As(err); !ok || ie.Field != c.field {
				t.Errorf("%q: %v, want a problem with %s", invalid.Truncate(c.req.Body, 20), err, c.field)
			}
		}
		if n := b.count(`SELECT count(*) FROM conversation_messages cm JOIN conversations c ON c.id = cm.conversation_id
			WHERE c.subscriber_id = $1`, m.id); n != 0 {
			t.Fatalf("%d messages written by refused sends", n)
		}
	})

	t.Run("StopUnsubscribesAnswersAndNeverReachesTheInbox", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		msg, _, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, conversations.SendRequest{Body: "  Stop! "})
		if err != nil {
			t.Fatal(err)
		}
		if msg.Origin != conversations.OriginConversation {
			t.Fatalf("stored keyword %+v", msg)
		}
		st, err := subscribers.MembershipStatusOf(b.ctx, b.pool, b.list.ID, m.id)
		if err != nil || st != subscribers.MembershipStatus("unsubscribed") {
			t.Fatalf("membership %v %v, want unsubscribed", st, err)
		}
		if n := b.count(`SELECT count(*) FROM consent_records WHERE subscriber_id = $1 AND action = 'unsubscribe' AND source = 'keyword'`, m.id); n != 1 {
			t.Fatalf("%d consent records of the keyword unsubscribe, want 1", n)
		}
		conv, err := b.svc.SubscriberConversation(b.ctx, m.id, b.app.ID)
		if err != nil || conv.Status != conversations.StatusResolved || conv.Unread != 0 || conv.WaitingSince != nil {
			t.Fatalf("conversation %+v, %v: a keyword must not reach the inbox", conv, err)
		}
		page, err := b.svc.Inbox(b.ctx, conversations.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Items {
			if c.ID == conv.ID {
				t.Fatal("the keyword's conversation is in the inbox")
			}
		}
		history, err := b.svc.History(b.ctx, m.id, b.app.ID, conversations.Page{})
		if err != nil || len(history) != 2 || history[1].Author != conversations.AuthorSystem ||
			!strings.Contains(history[1].Body, "unsubscribed") || history[1].Origin != conversations.OriginKeyword {
			t.Fatalf("history %+v, %v: want the keyword and its answer", history, err)
		}
		// The answer is pushed to the device.
		b.waitFor(10*time.Second, func() bool { return b.deliveryStatus(history[1].ID) == "delivered" },
			func() string { return "answer push: " + b.deliveryStatus(history[1].ID) })
		// START comes back in.
		if _, _, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, conversations.SendRequest{Body: "start"}); err != nil {
			t.Fatal(err)
		}
		if st, _ := subscribers.MembershipStatusOf(b.ctx, b.pool, b.list.ID, m.id); st != subscribers.MembershipStatus("confirmed") {
			t.Fatalf("after START: %v", st)
		}
	})

	t.Run("KeywordsAreConfigurablePerListAndAccentInsensitive", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		if _, err := b.svc.SetListKeywords(b.ctx, b.system, b.list.ID, conversations.Keywords{Stop: []string{"Tschüss"},
			HelpText: "Call 0800 123"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, conversations.SendRequest{Body: "HILFE"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, conversations.SendRequest{Body: "tschuss"}); err != nil {
			t.Fatal(err)
		}
		history, _ := b.svc.History(b.ctx, m.id, b.app.ID, conversations.Page{})
		if len(history) != 4 || history[1].Body != "Call 0800 123" {
			t.Fatalf("history %+v", history)
		}
		if st, _ := subscribers.MembershipStatusOf(b.ctx, b.pool, b.list.ID, m.id); st != subscribers.MembershipStatus("unsubscribed") {
			t.Fatalf("the list's own stop word left membership %v", st)
		}
		// A sentence with the word is a message for a person.
		b.send(m, "please stop sending me the wrong size")
		if conv, _ := b.svc.SubscriberConversation(b.ctx, m.id, b.app.ID); conv.Status != conversations.StatusOpen {
			t.Fatalf("a sentence was taken for a keyword: %+v", conv)
		}
	})

	t.Run("TwoAgentsPickUpAtOnceExactlyOneWins", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		msg := b.send(m, "Hello?")
		agents := []conversations.Author{b.agent(access.RoleAgent, true, 5), b.agent(access.RoleAgent, true, 5)}
		var wg sync.WaitGroup
		errs := make([]error, len(agents))
		start := make(chan struct{})
		for i, a := range agents {
			wg.Go(func() {
				<-start
				_, errs[i] = b.svc.PickUp(b.ctx, audit.User(a.UserID, "agent", a.Name, netip.Addr{}), msg.ConversationID, a.UserID)
			})
		}
		close(start)
		wg.Wait()
		wins, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, conversations.ErrConflict):
				conflicts++
			default:
				t.Fatal(err)
			}
		}
		if wins != 1 || conflicts != 1 {
			t.Fatalf("%d won, %d got a conflict; want exactly one of each", wins, conflicts)
		}
	})

	t.Run("AutoAssignmentRespectsCapacityAndDrainsTheQueue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ann, bob := b.agent(access.RoleAgent, true, 1), b.agent(access.RoleAgent, true, 1)
		away := b.agent(access.RoleAgent, false, 5)
		team := b.team(true, ann, bob, away)
		if err := b.svc.SetAppInbox(b.ctx, b.system, b.app.ID, team); err != nil {
			t.Fatal(err)
		}
		var convs []int64
		for range 3 {
			convs = append(convs, b.send(b.member(), "Help me").ConversationID)
		}
		holders := map[int64]int{}
		for _, id := range convs[:2] {
			c, _ := b.svc.Get(b.ctx, id)
			if c.AssigneeID == nil {
				t.Fatalf("conversation %d was not assigned though agents had room", id)
			}
			holders[*c.AssigneeID]++
		}
		if holders[ann.UserID] != 1 || holders[bob.UserID] != 1 {
			t.Fatalf("assignments %v: want round robin, one each", holders)
		}
		if c, _ := b.svc.Get(b.ctx, convs[2]); c.AssigneeID != nil {
			t.Fatalf("the third conversation went to %d past everyone's capacity (or to an agent who is away)", *c.AssigneeID)
		}
		// Capacity frees: the waiting conversation goes to that agent.
		first, _ := b.svc.Get(b.ctx, convs[0])
		if _, err := b.svc.Resolve(b.ctx, b.system, first.ID); err != nil {
			t.Fatal(err)
		}
		if c, _ := b.svc.Get(b.ctx, convs[2]); c.AssigneeID == nil || *c.AssigneeID != *first.AssigneeID {
			t.Fatalf("after a resolve the waiting conversation is %+v, want it with %d", c, *first.AssigneeID)
		}
	})

	t.Run("ReplyIsPushedThroughTheProviderThenDeliveredAndRead", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		conv := b.send(m, "Is my order shipped?").ConversationID
		a := b.agent(access.RoleAgent, true, 5)
		actor := audit.User(a.UserID, "agent", a.Name, netip.Addr{})
		reply, err := b.svc.Reply(b.ctx, actor, a, conv, conversations.Reply{Body: "Yes, today.",
			Buttons: []conversations.Button{{Label: "Thanks"}, {Label: "Track it", URL: "https://track.example.com/1"}}})
		if err != nil {
			t.Fatal(err)
		}
		note, err := b.svc.Reply(b.ctx, actor, a, conv, conversations.Reply{Body: "Customer is VIP", Private: true})
		if err != nil {
			t.Fatal(err)
		}
		b.waitFor(10*time.Second, func() bool { return b.deliveryStatus(reply.ID) == "delivered" },
			func() string { return "reply push: " + b.deliveryStatus(reply.ID) })
		got := b.sim.Received("apns", m.device.Token)
		if len(got) != 1 {
			t.Fatalf("simulator received %d pushes, want the reply only (never the note)", len(got))
		}
		var payload struct {
			APS struct {
				Alert struct{ Title, Body string } `json:"alert"`
			} `json:"aps"`
			Receipt string `json:"receipt"`
		}
		if err := json.Unmarshal(got[0].Payload, &payload); err != nil || payload.APS.Alert.Body != "Yes, today." ||
			payload.APS.Alert.Title != a.Name || payload.Receipt == "" {
			t.Fatalf("push payload %s (%v)", got[0].Payload, err)
		}
		if b.deliveryStatus(note.ID) != "" {
			t.Fatal("a note was queued for the subscriber's devices")
		}
		history, _ := b.svc.History(b.ctx, m.id, b.app.ID, conversations.Page{})
		for _, h := range history {
			if h.Private || h.Body == "Customer is VIP" {
				t.Fatal("the subscriber's history shows a note")
			}
		}
		if history[len(history)-1].AuthorName != a.Name {
			t.Fatalf("the subscriber sees %q as the author, want the agent's name", history[len(history)-1].AuthorName)
		}
		// Receipts: delivered, then read; a forged token changes nothing.
		if err := b.svc.Receipt(b.ctx, public, payload.Receipt, conversations.ReceiptDelivered); err != nil {
			t.Fatal(err)
		}
		msg, _ := b.svc.Message(b.ctx, reply.ID)
		if msg.DeliveredAt == nil || msg.ReadAt != nil {
			t.Fatalf("after the delivered receipt: %+v", msg)
		}
		if err := b.svc.Receipt(b.ctx, public, payload.Receipt[:len(payload.Receipt)-3]+"AAA", conversations.ReceiptRead); !errors.Is(err, conversations.ErrBadToken) {
			t.Fatalf("forged receipt: %v", err)
		}
		if err := b.svc.Receipt(b.ctx, public, payload.Receipt, conversations.ReceiptRead); err != nil {
			t.Fatal(err)
		}
		if msg, _ = b.svc.Message(b.ctx, reply.ID); msg.ReadAt == nil || len(msg.Deliveries) != 1 || msg.Deliveries[0].Status != "delivered" {
			t.Fatalf("after the read receipt: %+v", msg)
		}
		// A tap on the answer button comes back as the subscriber's message.
		tap, err := b.svc.Tap(b.ctx, public, payload.Receipt, "b0")
		if err != nil || tap.Body != "Thanks" || tap.ReplyTo == nil || *tap.ReplyTo != reply.ID {
			t.Fatalf("tap: %+v %v", tap, err)
		}
		if _, err := b.svc.Tap(b.ctx, public, payload.Receipt, "b1"); err == nil {
			t.Fatal("a link button was taken as an answer")
		}
		// The agent who answered holds the conversation now.
		if c, _ := b.svc.Get(b.ctx, conv); c.AssigneeID == nil || *c.AssigneeID != a.UserID {
			t.Fatalf("conversation %+v: the replying agent should hold it", c)
		}
	})

	t.Run("TransactionalMessagesFollowTheConsentRule", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		bot := conversations.Author{KeyID: 0, Name: "Shop"}
		tm := conversations.Transactional{SubscriberID: &m.id, AppID: b.app.ID, IdempotencyKey: "order-" + randomID(),
			Title: "Your parcel", Body: "arrives today", TTLSeconds: 3600}
		first, created, err := b.svc.SendTransactional(b.ctx, b.system, bot, tm)
		if err != nil || !created {
			t.Fatal(created, err)
		}
		again, created, err := b.svc.SendTransactional(b.ctx, b.system, bot, tm)
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("repeated request: %v %v", created, err)
		}
		b.waitFor(10*time.Second, func() bool { return b.deliveryStatus(first.ID) == "delivered" },
			func() string { return "transactional push: " + b.deliveryStatus(first.ID) })
		if conv, _ := b.svc.SubscriberConversation(b.ctx, m.id, b.app.ID); conv.Status != conversations.StatusResolved {
			t.Fatalf("a transactional message put the conversation in the inbox: %+v", conv)
		}
		// Opted out of service messages, or erased: nothing is stored.
		if _, err := b.pool.Exec(b.ctx, `UPDATE subscribers SET service_messages = false WHERE id = $1`, m.id); err != nil {
			t.Fatal(err)
		}
		tm.IdempotencyKey = "order-" + randomID()
		if _, _, err := b.svc.SendTransactional(b.ctx, b.system, bot, tm); !errors.Is(err, conversations.ErrSubscriberGone) {
			t.Fatalf("opted out: %v", err)
		}
		other := b.member()
		if err := b.optin.Erase(b.ctx, b.system, other.id); err != nil {
			t.Fatal(err)
		}
		tm.SubscriberID = &other.id
		if _, _, err := b.svc.SendTransactional(b.ctx, b.system, bot, tm); !errors.Is(err, conversations.ErrSubscriberGone) {
			t.Fatalf("erased: %v", err)
		}
	})

	t.Run("SnoozedConversationWakesAtItsTime", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		conv := b.send(b.member(), "Call me back tomorrow").ConversationID
		if _, err := b.svc.Snooze(b.ctx, b.system, conv, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		b.waitFor(15*time.Second, func() bool {
			c, _ := b.svc.Get(b.ctx, conv)
			return c.Status == conversations.StatusOpen
		}, func() string { return "the snoozed conversation did not wake" })
	})

	t.Run("AttachmentsAreCheckedByContentAndServedOnlyToTheirOwner", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m, other := b.member(), b.member()
		png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)
		if _, err := b.svc.Upload(b.ctx, public, m.id, b.app.ID, []byte("MZ\x90\x00 an executable named photo.png")); err == nil {
			t.Fatal("an executable was accepted as an attachment")
		}
		a, err := b.svc.Upload(b.ctx, public, m.id, b.app.ID, png)
		if err != nil || a.ContentType != "image/png" {
			t.Fatalf("upload: %+v %v", a, err)
		}
		if _, err := b.svc.AttachmentOf(b.ctx, a.ID, other.id); !errors.Is(err, conversations.ErrNotFound) {
			t.Fatalf("another subscriber reached the attachment: %v", err)
		}
		if _, _, err := b.svc.Send(b.ctx, public, other.id, b.app.ID, conversations.SendRequest{AttachmentID: &a.ID}); err == nil {
			t.Fatal("another subscriber sent someone's attachment")
		}
		if _, _, err := b.svc.Send(b.ctx, public, m.id, b.app.ID, conversations.SendRequest{AttachmentID: &a.ID}); err != nil {
			t.Fatal(err)
		}
		url, _ := b.svc.AttachmentURL(a)
		token := url[strings.LastIndex(url, "/")+1:]
		if _, data, err := b.svc.OpenAttachment(b.ctx, token); err != nil || len(data) != len(png) {
			t.Fatalf("open: %v", err)
		}
		if _, _, err := b.svc.OpenAttachment(b.ctx, token[:len(token)-2]+"AA"); !errors.Is(err, conversations.ErrBadToken) {
			t.Fatalf("forged link: %v", err)
		}
		// Export holds it; erasure removes the bytes.
		exp, err := b.optin.Export(b.ctx, m.id)
		if err != nil || len(exp.Attachments) != 1 || len(exp.Attachments[0].Data) != len(png) {
			t.Fatalf("export: %v", err)
		}
		if err := b.optin.Erase(b.ctx, b.system, m.id); err != nil {
			t.Fatal(err)
		}
		if n := b.count(`SELECT count(*) FROM attachments WHERE subscriber_id = $1`, m.id); n != 0 {
			t.Fatal("attachment rows survived erasure")
		}
		if _, _, err := b.svc.OpenAttachment(b.ctx, token); err == nil {
			t.Fatal("an erased attachment is still served")
		}
		// An upload no message sent is purged after a day; a sent one stays.
		unsent, err := b.svc.Upload(b.ctx, public, other.id, b.app.ID, png)
		if err != nil {
			t.Fatal(err)
		}
		sent, _ := b.svc.Upload(b.ctx, public, other.id, b.app.ID, png)
		if _, _, err := b.svc.Send(b.ctx, public, other.id, b.app.ID, conversations.SendRequest{AttachmentID: &sent.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(b.ctx, `UPDATE attachments SET created_at = now() - interval '25 hours' WHERE id = ANY($1)`,
			[]int64{unsent.ID, sent.ID}); err != nil {
			t.Fatal(err)
		}
		if err := (&conversations.PurgeUnsentWorker{Service: b.svc}).Work(b.ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.AttachmentOf(b.ctx, unsent.ID, 0); !errors.Is(err, conversations.ErrNotFound) {
			t.Fatalf("an unsent upload survived the purge: %v", err)
		}
		if _, err := b.svc.AttachmentOf(b.ctx, sent.ID, 0); err != nil {
			t.Fatalf("a sent attachment was purged: %v", err)
		}
	})

	t.Run("CannedResponsesFillPlaceholdersAndSearchFindsText", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		ext := "cust-" + randomID()
		if _, err := subscribers.Update(b.ctx, b.pool, m.id, subscribers.SubscriberParams{ExternalID: &ext,
			Attributes: []byte(`{"first_name":"Ada"}`)}); err != nil {
			t.Fatal(err)
		}
		conv := b.send(m, "quokka-"+randomID()+" is broken").ConversationID
		code := "hi-" + randomID()
		cr, err := b.svc.CreateCanned(b.ctx, b.system, conversations.CannedParams{ShortCode: &code, Title: ptr("Hello"),
			Body: ptr("Hi {{subscriber.first_name}}, {{agent.name}} here ({{subscriber.nope}}).")})
		if err != nil {
			t.Fatal(err)
		}
		a := b.agent(access.RoleAgent, true, 5)
		reply, err := b.svc.Reply(b.ctx, b.system, a, conv, conversations.Reply{CannedResponseID: &cr.ID})
		if err != nil || reply.Body != "Hi Ada, "+a.Name+" here ()." {
			t.Fatalf("canned reply %q, %v", reply.Body, err)
		}
		history, _ := b.svc.History(b.ctx, m.id, b.app.ID, conversations.Page{})
		word := strings.Fields(history[0].Body)[0]
		hits, err := b.svc.Search(b.ctx, word, 0, 10)
		if err != nil || len(hits) != 1 || hits[0].ConversationID != conv {
			t.Fatalf("search %q: %+v %v", word, hits, err)
		}
	})
}

func TestInbox(t *testing.T) {
	t.Parallel()

	t.Run("PagesOldestWaitingFirstByFilter", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		team := b.team(false)
		if err := b.svc.SetAppInbox(b.ctx, b.system, b.app.ID, team); err != nil {
			t.Fatal(err)
		}
		var want []int64
		for range 5 {
			want = append(want, b.send(b.member(), "waiting").ConversationID)
		}
		// Answered conversations come after every waiting one.
		a := b.agent(access.RoleAgent, true, 5)
		if _, err := b.svc.Reply(b.ctx, b.system, a, want[1], conversations.Reply{Body: "done"}); err != nil {
			t.Fatal(err)
		}
		want = append(append(want[:1:1], want[2:]...), want[1])
		var got []int64
		after := ""
		for pages := 0; ; pages++ {
			page, err := b.svc.Inbox(b.ctx, conversations.Filter{TeamID: team, After: after, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Items {
				got = append(got, c.ID)
			}
			if page.Next == "" || pages > 5 {
				break
			}
			after = page.Next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("inbox order %v, want %v", got, want)
		}
		mine, err := b.svc.Inbox(b.ctx, conversations.Filter{TeamID: team, Assignee: "me", Me: a.UserID})
		if err != nil || len(mine.Items) != 1 || mine.Items[0].ID != want[4] {
			t.Fatalf("mine: %+v %v", mine, err)
		}
		if _, err := b.svc.SetLabels(b.ctx, b.system, want[0], []string{"vip"}); err != nil {
			t.Fatal(err)
		}
		vip, err := b.svc.Inbox(b.ctx, conversations.Filter{TeamID: team, Label: "vip"})
		if err != nil || len(vip.Items) != 1 || vip.Items[0].ID != want[0] || vip.Items[0].LastMessage == nil {
			t.Fatalf("vip: %+v %v", vip, err)
		}
	})

	t.Run("ABlockedSubscriberIsNeverPushedTo", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.member()
		conv := b.send(m, "hello").ConversationID
		if _, err := b.pool.Exec(b.ctx, `UPDATE subscribers SET state = 'blocked' WHERE id = $1`, m.id); err != nil {
			t.Fatal(err)
		}
		reply, err := b.svc.Reply(b.ctx, b.system, b.agent(access.RoleAgent, true, 5), conv, conversations.Reply{Body: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if s := b.deliveryStatus(reply.ID); s != "" {
			t.Fatalf("a blocked subscriber's device was queued: %s", s)
		}
		if _, _, err := b.svc.Send(b.ctx, audit.Public(netip.Addr{}), m.id, b.app.ID, conversations.SendRequest{Body: "again"}); !errors.Is(err, conversations.ErrSubscriberGone) {
			t.Fatalf("a blocked subscriber's message: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
