package campaigns_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/delivery"
)

func TestRecordAction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type trackingBundle struct {
		*testBundle
		campaign   *campaigns.Campaign
		member     member
		replyToken string
	}

	// setup makes a draft campaign with a reply button and test-sends it to
	// one member, whose message carries the per-person reply token.
	setup := func(t *testing.T) *trackingBundle {
		t.Helper()
		b := setup(t) // the package's setup: this closure's name is not yet in scope
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Coffee?", URL: "https://shop.example.com/x",
			Actions: []campaigns.Action{{Label: "Yes", Type: "reply", ReplyText: "Yes please"}}}})
		rep, err := b.svc.TestSend(ctx, audit.System("test"), c.ID, []int64{m.subscriberID})
		if err != nil || len(rep.Results) != 1 || rep.Results[0].Outcome.Class != delivery.ClassDelivered {
			t.Fatalf("test send: %+v %v", rep, err)
		}
		var msg struct {
			Message struct {
				Data map[string]string `json:"data"`
			} `json:"message"`
		}
		if err := json.Unmarshal(b.received(m)[0].Payload, &msg); err != nil {
			t.Fatal(err)
		}
		token := msg.Message.Data["reply_token"]
		if token == "" || token == "{{reply_token}}" {
			t.Fatalf("no reply token in %+v", msg.Message.Data)
		}
		return &trackingBundle{testBundle: b, campaign: c, member: m, replyToken: token}
	}

	t.Run("ReplyPostedTwiceCountsOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for i := range 2 { // a service worker retrying its POST
			if err := b.svc.RecordAction(ctx, audit.Public(netip.Addr{}), b.replyToken, "a0"); err != nil {
				t.Fatalf("post %d: %v", i+1, err)
			}
		}
		st, err := b.svc.Stats(ctx, b.campaign.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Replies != 1 || st.ActionTaps["a0"] != 1 {
			t.Fatalf("replies %d, taps %v; want one of each", st.Replies, st.ActionTaps)
		}
		convs, _, err := conversations.OfSubscriber(ctx, b.pool, nil, b.member.subscriberID)
		if err != nil {
			t.Fatal(err)
		}
		if len(convs) != 1 || len(convs[0].Messages) != 1 {
			t.Fatalf("conversations %+v, want one message", convs)
		}
		// The reply is a message linked to the campaign and its button, and
		// it puts the conversation in the inbox.
		m := convs[0].Messages[0]
		if m.CampaignID == nil || *m.CampaignID != b.campaign.ID || m.Action == nil || *m.Action != "a0" ||
			m.Origin != conversations.OriginCampaign || convs[0].Status != conversations.StatusOpen || convs[0].Unread != 1 {
			t.Fatalf("reply %+v in %+v, want linked to campaign %d button a0, conversation open", m, convs[0], b.campaign.ID)
		}
	})
}
func TestClicksAndActionsAreCounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := b.addMember(delivery.PlatformWebPush, "en", "", "")
	c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Hi", URL: "https://shop.example.com/x",
		Actions: []campaigns.Action{{Label: "Yes", Type: "reply", ReplyText: "Yes please"}, {Label: "Shop", Type: "open_url", URL: "https://shop.example.com/y"}}}})
	must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
	b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
	var p struct {
		URL  string            `json:"url"`
		Data map[string]string `json:"data"`
	}
	json.Unmarshal(b.received(m)[0].Payload, &p)
	token := strings.TrimPrefix(p.URL, "http://herald.test/c/")
	if target, err := b.svc.Click(ctx, token); err != nil || target != "https://shop.example.com/x" {
		t.Fatalf("click: %q %v", target, err)
	}
	if _, err := b.svc.Click(ctx, token[:len(token)-2]+"AA"); err == nil {
		t.Fatal("forged click token accepted")
	}
	// The reply button's tap lands the reply in the subscriber's conversation.
	if err := b.svc.RecordAction(ctx, audit.Public(netip.Addr{}), p.Data["campaign"], "a0"); err == nil {
		t.Fatal("a reply without the per-person reply_token was accepted")
	}
	if err := b.svc.RecordAction(ctx, audit.Public(netip.Addr{}), p.Data["reply_token"], "a0"); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.RecordAction(ctx, audit.Public(netip.Addr{}), p.Data["campaign"], "a1"); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.RecordAction(ctx, audit.Public(netip.Addr{}), p.Data["campaign"], "a7"); err == nil {
		t.Fatal("unknown action accepted")
	}
	st := must(b.svc.Stats(ctx, c.ID))
	if st.Clicks != 1 || st.ActionTaps["a0"] != 1 || st.ActionTaps["a1"] != 1 || st.Replies != 1 {
		t.Fatalf("stats %+v", st)
	}
	convs, _, err := conversations.OfSubscriber(ctx, b.pool, nil, m.subscriberID)
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 1 || len(convs[0].Messages) != 1 || convs[0].Messages[0].Body != "Yes please" ||
		convs[0].Messages[0].Author != "subscriber" || *convs[0].Messages[0].CampaignID != c.ID {
		t.Fatalf("conversations %+v", convs)
	}
	// Receipts count once per device, reported again or not, and an open
	// confirms the delivery too; a forged token counts nothing.
	receipt := p.Data["receipt"]
	if receipt == "" || strings.Contains(receipt, "{{") {
		t.Fatalf("no receipt token in the push data: %v", p.Data)
	}
	for _, kind := range []string{"read", "delivered", "read"} {
		if err := b.svc.Receipt(ctx, receipt, kind); err != nil {
			t.Fatalf("receipt %s: %v", kind, err)
		}
	}
	if err := b.svc.Receipt(ctx, receipt[:len(receipt)-2]+"AA", "read"); !errors.Is(err, campaigns.ErrBadToken) {
		t.Fatalf("forged receipt: %v", err)
	}
	if st := must(b.svc.Stats(ctx, c.ID)); st.ConfirmedDeliveries != 1 || st.Opens != 1 {
		t.Fatalf("receipts counted %d delivered, %d opened; want 1 and 1", st.ConfirmedDeliveries, st.Opens)
	}
}
