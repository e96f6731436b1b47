package campaigns_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
)

func TestContentIsValidatedAtSave(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := map[string]campaigns.Content{
		"content.title":           {},
		"content.actions":         {Title: "x", Actions: make([]campaigns.Action, 4)},
		"content.actions[0].url":  {Title: "x", Actions: []campaigns.Action{{Label: "Go", Type: "open_url"}}},
		"content.actions[0].type": {Title: "x", Actions: []campaigns.Action{{Label: "Go", Type: "explode"}}},
		"content.url":             {Title: "x", URL: "javascript:alert(1)"},
		"content.variants":        {Title: "x", Variants: map[string]campaigns.Text{"not a locale!": {Title: "y"}}},
		"content.overrides":       {Title: "x", Overrides: map[string]campaigns.Text{"pager": {Title: "y"}}},
		"content.collapse_key":    {Title: "x", CollapseKey: "has spaces in it"},
		"content":                 {Title: "x", Body: strings.Repeat("é", 1990)},
		"content.variants.de":     {Title: "x", Variants: map[string]campaigns.Text{"de": {Body: strings.Repeat("ü", 1990)}}},
		"content.ttl_seconds":     {Title: "x", TTLSeconds: -1},
	}
	for field, content := range tests {
		content := content
		_, err := b.svc.Create(context.Background(), campaigns.Params{App: &b.app.Slug, Name: ptr("x"), Content: &content,
			Audience: &campaigns.Audience{Lists: []string{b.list}}})
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}
func TestTestSendReachesNamedPeopleOnlyAndCountsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tester := b.addMember(delivery.PlatformFCM, "de-DE", "", "")
	other := b.addMember(delivery.PlatformFCM, "en", "", "")
	c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Hello", Variants: map[string]campaigns.Text{"de": {Title: "Hallo"}}}})
	res, err := b.svc.TestSend(ctx, c.ID, []int64{tester.subscriberID})
	if err != nil || len(res) != 1 || res[0].Outcome.Class != delivery.ClassDelivered {
		t.Fatalf("test send: %+v %v", res, err)
	}
	if got := b.received(tester); len(got) != 1 || !strings.Contains(string(got[0].Payload), "[Test] Hallo") {
		t.Fatalf("tester received %v", got)
	}
	if len(b.received(other)) != 0 {
		t.Fatal("someone else received the test")
	}
	st := must(b.svc.Stats(ctx, c.ID))
	if st.Status != campaigns.StatusDraft || st.Sent != 0 {
		t.Fatalf("a test send changed the campaign: %+v", st)
	}
	if _, err := b.svc.TestSend(ctx, c.ID, nil); err == nil {
		t.Fatal("test send to nobody accepted")
	}
}
