package campaigns_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
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
		_, err := b.svc.Create(context.Background(), audit.System("test"), campaigns.Params{App: &b.app.Slug, Name: ptr("x"), Content: &content,
			Audience: &campaigns.Audience{Lists: []string{b.list}}})
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// TestVariantsAreKeptByCanonicalTag: a variant typed "de-at" reaches a
// subscriber whose locale is de-AT, and one language may not come twice.
func TestVariantsAreKeptByCanonicalTag(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	c, err := b.svc.Create(ctx, audit.System("test"), campaigns.Params{App: &b.app.Slug, Name: ptr("x"),
		Content:  &campaigns.Content{Title: "Sale", Variants: map[string]campaigns.Text{"de-at": {Title: "Ausverkauf"}, "FR": {Title: "Soldes"}}},
		Audience: &campaigns.Audience{Lists: []string{b.list}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.svc.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Content.Variants) != 2 || got.Content.Variants["de-AT"].Title != "Ausverkauf" || got.Content.Variants["fr"].Title != "Soldes" {
		t.Fatalf("variants %v", got.Content.Variants)
	}
	_, err = b.svc.Create(ctx, audit.System("test"), campaigns.Params{App: &b.app.Slug, Name: ptr("x"),
		Content:  &campaigns.Content{Title: "Sale", Variants: map[string]campaigns.Text{"de": {Title: "A"}, "DE": {Title: "B"}}},
		Audience: &campaigns.Audience{Lists: []string{b.list}}})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("one language twice: %v", err)
	}
}
