package campaigns_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/delivery"
)

func TestClicksAndActionsAreCounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := b.addMember(delivery.PlatformWebPush, "en", "", "")
	c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Hi", URL: "https://shop.example.com/x",
		Actions: []campaigns.Action{{Label: "Yes", Type: "reply", ReplyText: "Yes please"}, {Label: "Shop", Type: "open_url", URL: "https://shop.example.com/y"}}}})
	must(b.svc.ScheduleCampaign(ctx, c.ID))
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
	if err := b.svc.RecordAction(ctx, p.Data["campaign"], "a0"); err == nil {
		t.Fatal("a reply without the per-person reply_token was accepted")
	}
	if err := b.svc.RecordAction(ctx, p.Data["reply_token"], "a0"); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.RecordAction(ctx, p.Data["campaign"], "a1"); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.RecordAction(ctx, p.Data["campaign"], "a7"); err == nil {
		t.Fatal("unknown action accepted")
	}
	st := must(b.svc.Stats(ctx, c.ID))
	if st.Clicks != 1 || st.ActionTaps["a0"] != 1 || st.ActionTaps["a1"] != 1 || st.Replies != 1 {
		t.Fatalf("stats %+v", st)
	}
	convs := must(conversations.OfSubscriber(ctx, b.pool, m.subscriberID))
	if len(convs) != 1 || len(convs[0].Messages) != 1 || convs[0].Messages[0].Body != "Yes please" ||
		convs[0].Messages[0].Author != "subscriber" || *convs[0].Messages[0].CampaignID != c.ID {
		t.Fatalf("conversations %+v", convs)
	}
}
