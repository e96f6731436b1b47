package web_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-im/herald/subscribers"
)

// TestBranding: an admin says who sends (company, privacy policy, imprint,
// logo, colour); the subscriber pages show it, in their language, and a
// list may have a colour of its own.
func TestBranding(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 100)...)

	res := b.do(http.MethodPatch, "/api/v1/apps/"+b.appSlug, b.admin, "application/json", []byte(`{"company_name":"Muster GmbH",
		"privacy_url":"https://muster.example/datenschutz","imprint_url":"https://muster.example/impressum","accent_color":"#0b5d1e"}`))
	if res.status != http.StatusOK || res.json(t)["company_name"] != "Muster GmbH" {
		t.Fatalf("branding: %d %s", res.status, res.body)
	}
	res = b.do(http.MethodPut, "/api/v1/apps/"+b.appSlug+"/logo", b.admin, "image/png", png)
	logoURL, _ := res.json(t)["logo_url"].(string)
	if res.status != http.StatusOK || !strings.HasPrefix(logoURL, "/brand/"+b.appSlug+"/logo?v=") {
		t.Fatalf("logo: %d %s", res.status, res.body)
	}
	colored, name, single := "green-"+randomSuffix(), "Green list", "single"
	color := "#7a1f5c"
	if _, err := subscribers.CreateList(ctx, b.pool, subscribers.ListParams{Slug: &colored, Name: &name, OptIn: &single,
		AccentColor: &color}); err != nil {
		t.Fatal(err)
	}

	t.Run("RefusesWhatPagesCannotShow", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct{ body, field string }{
			{`{"accent_color":"#ffcc00"}`, "accent_color"}, // white text on it cannot be read
			{`{"accent_color":"#0B5D1E"}`, "accent_color"},
			{`{"accent_color":"green"}`, "accent_color"},
			{`{"privacy_url":"javascript:alert(1)"}`, "privacy_url"},
			{`{"imprint_url":"https://user:pw@muster.example/"}`, "imprint_url"},
			{`{"company_name":"Muster\u0000GmbH"}`, "company_name"},
			{`{"name":""}`, "name"},
		} {
			res := b.do(http.MethodPatch, "/api/v1/apps/"+b.appSlug, b.admin, "application/json", []byte(tt.body))
			if res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), tt.field) {
				t.Errorf("%s: %d %s", tt.body, res.status, res.body)
			}
		}
		svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
		if res := b.do(http.MethodPut, "/api/v1/apps/"+b.appSlug+"/logo", b.admin, "image/svg+xml", svg); res.status != http.StatusUnprocessableEntity {
			t.Errorf("svg logo: %d %s", res.status, res.body)
		}
		if res := b.do(http.MethodPut, "/api/v1/apps/"+b.appSlug+"/logo", b.admin, "image/png", append(png, make([]byte, 300<<10)...)); res.status != http.StatusRequestEntityTooLarge {
			t.Errorf("huge logo: %d", res.status)
		}
		if res := b.do(http.MethodPatch, "/api/v1/apps/"+b.appSlug, b.marketer, "application/json", []byte(`{"company_name":"x"}`)); res.status != http.StatusForbidden {
			t.Errorf("marketer: %d", res.status)
		}
		if res := b.do(http.MethodGet, "/api/v1/apps/"+b.appSlug, b.admin, "", nil); res.json(t)["accent_color"] != "#0b5d1e" {
			t.Errorf("a refused change changed something: %s", res.body)
		}
	})

	t.Run("OptInPageShowsWhoSends", func(t *testing.T) {
		t.Parallel()
		res := b.doFrom(b.app, "198.51.100.81", http.MethodGet, "/l/"+b.list+"?app="+b.appSlug, "", "", nil, "Accept-Language", "de-DE")
		page := string(res.body)
		for _, want := range []string{`<img class="logo" src="` + logoURL + `"`, `<span class="brand-name">Muster GmbH</span>`,
			"Absender: Muster GmbH.", `<a href="https://muster.example/datenschutz" rel="noopener">Datenschutzerklärung</a>`,
			`<a href="https://muster.example/impressum" rel="noopener">Impressum</a>`, `href="/brand/` + b.appSlug + `/theme.css?v=`} {
			if !strings.Contains(page, want) {
				t.Errorf("%q missing in %s", want, page)
			}
		}
	})

	t.Run("ThemeAndLogoAreServed", func(t *testing.T) {
		t.Parallel()
		css := b.do(http.MethodGet, "/brand/"+b.appSlug+"/theme.css", "", "", nil)
		if css.status != http.StatusOK || string(css.body) != ":root { --accent: #0b5d1e; }\n" ||
			!strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
			t.Errorf("theme: %d %v %s", css.status, css.header, css.body)
		}
		css = b.do(http.MethodGet, "/brand/"+b.appSlug+"/theme.css?list="+colored, "", "", nil)
		if string(css.body) != ":root { --accent: #7a1f5c; }\n" {
			t.Errorf("list theme: %d %s", css.status, css.body)
		}
		logo := b.do(http.MethodGet, "/brand/"+b.appSlug+"/logo", "", "", nil)
		if logo.status != http.StatusOK || !bytes.Equal(logo.body, png) || logo.header.Get("Content-Type") != "image/png" ||
			logo.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("logo: %d %v", logo.status, logo.header)
		}
		for _, path := range []string{"/brand/no-such-app/logo", "/brand/no-such-app/theme.css", "/brand/" + b.appSlug + "/theme.css?list=no-such-list"} {
			if res := b.do(http.MethodGet, path, "", "", nil); res.status != http.StatusNotFound {
				t.Errorf("%s: %d", path, res.status)
			}
		}
	})

	t.Run("PreferencePageShowsTheSubscribersApp", func(t *testing.T) {
		t.Parallel()
		path := b.subscribedWithPreferences("brand-"+randomSuffix(), colored)
		page := string(b.do(http.MethodGet, path, "", "", nil).body)
		if !strings.Contains(page, "Sent by Muster GmbH.") || !strings.Contains(page, `<img class="logo" src="`+logoURL+`"`) {
			t.Errorf("preferences page: %s", page)
		}
	})

	t.Run("ListHasALogoOfItsOwn", func(t *testing.T) {
		// Not parallel with the others: the list's pages change.
		other := setup(t)
		jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte{3}, 64)...)
		if res := other.do(http.MethodPut, "/api/v1/lists/"+other.list+"/logo", other.agent, "image/jpeg", jpeg); res.status != http.StatusForbidden {
			t.Errorf("an agent sets a list's logo: %d", res.status)
		}
		if res := other.do(http.MethodPut, "/api/v1/lists/"+other.list+"/logo", other.marketer, "image/svg+xml", []byte("<svg/>")); res.status != http.StatusUnprocessableEntity {
			t.Errorf("svg list logo: %d %s", res.status, res.body)
		}
		if res := other.do(http.MethodPut, "/api/v1/lists/no-such-list/logo", other.marketer, "image/jpeg", jpeg); res.status != http.StatusNotFound {
			t.Errorf("logo of no list: %d %s", res.status, res.body)
		}
		res := other.do(http.MethodPut, "/api/v1/lists/"+other.list+"/logo", other.marketer, "image/jpeg", jpeg)
		if res.status != http.StatusOK || res.json(t)["has_logo"] != true {
			t.Fatalf("list logo: %d %s", res.status, res.body)
		}
		logo := other.do(http.MethodGet, "/brand/lists/"+other.list+"/logo", "", "", nil)
		if logo.status != http.StatusOK || !bytes.Equal(logo.body, jpeg) || logo.header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("list logo served: %d %v", logo.status, logo.header)
		}
		page := string(other.doFrom(other.app, "198.51.100.82", http.MethodGet, "/l/"+other.list+"?app="+other.appSlug, "", "", nil).body)
		if !strings.Contains(page, `<img class="logo" src="/brand/lists/`+other.list+`/logo?v=`) {
			t.Errorf("the list's page does not show its logo: %s", page)
		}
		// A private list has no pages: its logo is not served, and it takes
		// no new one.
		other.do(http.MethodPatch, "/api/v1/lists/"+other.list, other.marketer, "application/json", []byte(`{"visibility":"private"}`))
		if res := other.do(http.MethodGet, "/brand/lists/"+other.list+"/logo", "", "", nil); res.status != http.StatusNotFound {
			t.Errorf("a private list's logo: %d", res.status)
		}
		if res := other.do(http.MethodPut, "/api/v1/lists/"+other.list+"/logo", other.marketer, "image/jpeg", jpeg); res.status != http.StatusUnprocessableEntity {
			t.Errorf("a logo for a private list: %d %s", res.status, res.body)
		}
		if res := other.do(http.MethodDelete, "/api/v1/lists/"+other.list+"/logo", other.marketer, "", nil); res.status != http.StatusOK || res.json(t)["has_logo"] != false {
			t.Errorf("remove the list's logo: %d %s", res.status, res.body)
		}
	})

	t.Run("LogoCanBeRemoved", func(t *testing.T) {
		// Not parallel with the others: they read the logo.
		other := setup(t)
		other.do(http.MethodPut, "/api/v1/apps/"+other.appSlug+"/logo", other.admin, "image/png", png)
		res := other.do(http.MethodDelete, "/api/v1/apps/"+other.appSlug+"/logo", other.admin, "", nil)
		if res.status != http.StatusOK || res.json(t)["logo_url"] != "" {
			t.Fatalf("remove: %d %s", res.status, res.body)
		}
		if res := other.do(http.MethodGet, "/brand/"+other.appSlug+"/logo", "", "", nil); res.status != http.StatusNotFound {
			t.Errorf("removed logo still served: %d", res.status)
		}
		// A scheme in capitals is a URL all the same: stored, not a 500.
		res = other.do(http.MethodPatch, "/api/v1/apps/"+other.appSlug, other.admin, "application/json",
			[]byte(`{"privacy_url":"HTTPS://Muster.example/Datenschutz"}`))
		if res.status != http.StatusOK || res.json(t)["privacy_url"] != "HTTPS://Muster.example/Datenschutz" {
			t.Errorf("capital scheme: %d %s", res.status, res.body)
		}
	})
}
