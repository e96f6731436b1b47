package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// TestSubscriberPagesSpeakTheirLanguage: the pages subscribers see answer in
// German or English, from ?lang= or the browser's Accept-Language, say so
// in <html lang>, and show readable statuses.
func TestSubscriberPagesSpeakTheirLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ext := "lang-" + randomSuffix()
	hmac := optin.IdentityHMAC(b.identity, ext)
	second, name, single := "zweite-"+randomSuffix(), "Zweite Liste", "single"
	if _, err := subscribers.CreateList(ctx, b.pool, subscribers.ListParams{Slug: &second, Name: &name, OptIn: &single}); err != nil {
		t.Fatal(err)
	}
	for _, list := range []string{b.list, second} {
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": list, "external_id": ext,
			"identity_hmac": hmac, "device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}})
		if res.status >= 300 {
			t.Fatalf("subscribe: %d %s", res.status, res.body)
		}
	}
	res := b.postJSON("/public/v1/preferences", "", map[string]any{"app": b.appSlug, "external_id": ext, "identity_hmac": hmac})
	if res.status != http.StatusOK {
		t.Fatalf("preferences: %d %s", res.status, res.body)
	}
	prefs := b.pathOf(res.json(t)["preferences_url"].(string))

	const german = "de-DE,de;q=0.9,en;q=0.8"
	optInPage := "/l/" + b.list + "?app=" + b.appSlug
	for _, tt := range []struct {
		name, path, acceptLanguage string
		status                     int
		lang                       string
		want, notWant              []string
	}{
		{"OptInPageInGerman", optInPage, german, http.StatusOK, "de",
			[]string{"Benachrichtigungen erhalten", `data-lang="de"`, "Jede Nachricht enthält einen Link zum Abmelden.", "Versandt mit Herald"},
			[]string{"Get notifications"}},
		{"OptInPageInEnglishByDefault", optInPage, "", http.StatusOK, "en",
			[]string{"Get notifications", `data-lang="en"`}, nil},
		{"LangOverridesTheBrowser", optInPage + "&lang=en", german, http.StatusOK, "en",
			[]string{"Get notifications"}, []string{"Benachrichtigungen"}},
		{"UnsupportedLanguageFallsBackToEnglish", optInPage, "fr-FR,fr;q=0.9", http.StatusOK, "en",
			[]string{"Get notifications"}, nil},
		{"NoSuchListInGerman", "/l/keine-" + randomSuffix(), german, http.StatusNotFound, "de",
			[]string{"Diese Liste gibt es nicht"}, nil},
		{"InvalidLinkInGerman", "/confirm/nonsense", german, http.StatusNotFound, "de",
			[]string{"Dieser Link ist ungültig"}, nil},
		{"PreferencesInGermanWithReadableStatuses", prefs, german, http.StatusOK, "de",
			[]string{"Ihre Abonnements", `<span class="status">Angemeldet</span>`, `<span class="status">Wartet auf Ihre Bestätigung</span>`,
				"Von allem abmelden"},
			[]string{`<span class="status">confirmed</span>`, `<span class="status">pending</span>`}},
		{"PreferencesInEnglishWithReadableStatuses", prefs + "?lang=en", german, http.StatusOK, "en",
			[]string{"Your subscriptions", `<span class="status">Subscribed</span>`, `<span class="status">Waiting for your confirmation</span>`},
			nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var header []string
			if tt.acceptLanguage != "" {
				header = []string{"Accept-Language", tt.acceptLanguage}
			}
			res := b.doFrom(b.app, "198.51.100.77", http.MethodGet, tt.path, "", "", nil, header...)
			body := string(res.body)
			if res.status != tt.status || !strings.Contains(body, `<html lang="`+tt.lang+`">`) {
				t.Fatalf("%s: %d, want %d and lang %s: %s", tt.path, res.status, tt.status, tt.lang, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s: %q missing in %s", tt.path, w, body)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("%s: %q in %s", tt.path, w, body)
				}
			}
		})
	}
}

// TestConfirmationPushSpeaksTheSubscribersLanguage: the confirmation Herald
// writes itself follows the subscriber's locale.
func TestConfirmationPushSpeaksTheSubscribersLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct{ locale, title, body string }{
		{"de-DE", `"title":"Bitte bestätigen: `, `"body":"Tippen Sie hier`},
		{"en-GB", `"title":"Please confirm: `, `"body":"Tap to confirm`},
		{"", `"title":"Please confirm: `, `"body":"Tap to confirm`},
		{"fr-FR", `"title":"Please confirm: `, `"body":"Tap to confirm`},
	} {
		t.Run(tt.locale, func(t *testing.T) {
			t.Parallel()
			ext := "locale-" + randomSuffix()
			token := b.sim.NewFCMToken()
			res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": b.list, "external_id": ext,
				"identity_hmac": optin.IdentityHMAC(b.identity, ext), "locale": tt.locale,
				"device": map[string]any{"platform": "fcm", "token": token}})
			if res.status >= 300 {
				t.Fatalf("subscribe: %d %s", res.status, res.body)
			}
			payload := string(b.waitReceived("fcm", token, 1)[0].Payload)
			if !strings.Contains(payload, tt.title) || !strings.Contains(payload, tt.body) {
				t.Fatalf("confirmation to a %q subscriber: %s", tt.locale, payload)
			}
		})
	}
}
