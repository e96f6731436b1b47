package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/database/dbtest"
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
	second, name, single := "zweite-"+randomSuffix(), "Zweite Liste", "single"
	if _, err := subscribers.CreateList(ctx, b.pool, subscribers.ListParams{Slug: &second, Name: &name, OptIn: &single}); err != nil {
		t.Fatal(err)
	}
	prefs := b.subscribedWithPreferences("lang-"+randomSuffix(), b.list, second)

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

// TestPreferencesPageRejoin: a list left can be joined again from the
// preference page, agreeing to the consent text shown, which is recorded.
func TestPreferencesPageRejoin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	// setup makes a subscriber on two fresh single opt-in lists (one public,
	// one private), leaves both, and returns the preference page's path.
	type fixture struct {
		page, public, private string
		subID                 int64
		publicList            *subscribers.List
	}
	newFixture := func(t *testing.T) fixture {
		t.Helper()
		f := fixture{public: "again-" + randomSuffix(), private: "closed-" + randomSuffix()}
		name, single, text, private := "Again", "single", "Weekly offers by push.", "private"
		var err error
		if f.publicList, err = subscribers.CreateList(ctx, b.pool, subscribers.ListParams{Slug: &f.public, Name: &name, OptIn: &single,
			ConsentText: &text}); err != nil {
			t.Fatal(err)
		}
		if _, err := subscribers.CreateList(ctx, b.pool, subscribers.ListParams{Slug: &f.private, Name: &name, OptIn: &single,
			Visibility: &private}); err != nil {
			t.Fatal(err)
		}
		ext := "again-" + randomSuffix()
		f.page = b.subscribedWithPreferences(ext, f.public, f.private)
		if err := b.pool.QueryRow(ctx, `SELECT id FROM subscribers WHERE external_id = $1`, ext).Scan(&f.subID); err != nil {
			t.Fatal(err)
		}
		for _, list := range []string{f.public, f.private} {
			if left := b.do(http.MethodPost, f.page, "", "application/x-www-form-urlencoded", []byte("list="+list)); left.status != http.StatusSeeOther {
				t.Fatalf("leave %s: %d %s", list, left.status, left.body)
			}
		}
		return f
	}
	status := func(t *testing.T, f fixture, slug string) subscribers.MembershipStatus {
		t.Helper()
		l, err := subscribers.GetList(ctx, b.pool, slug)
		if err != nil {
			t.Fatal(err)
		}
		st, err := subscribers.MembershipStatusOf(ctx, b.pool, l.ID, f.subID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// rejoin presses "Subscribe again" on the page, as the browser sends it
	// (with Herald's origin).
	rejoin := func(f fixture, slug string, version int) *response {
		return b.send(b.app, request{method: http.MethodPost, path: f.page, origin: b.cfg.PublicURL,
			form: url.Values{"action": {"rejoin"}, "list": {slug}, "consent_version": {fmt.Sprint(version)}}})
	}

	t.Run("OffersThePublicListWithItsConsentText", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		page := string(b.do(http.MethodGet, f.page, "", "", nil).body)
		if !strings.Contains(page, `name="list" value="`+f.public+`"`) || !strings.Contains(page, "Weekly offers by push.") ||
			!strings.Contains(page, "Subscribe again") {
			t.Fatalf("no offer to join %s again: %s", f.public, page)
		}
		if strings.Contains(page, `name="action" value="rejoin"><input type="hidden" name="list" value="`+f.private+`"`) {
			t.Fatalf("a private list is offered: %s", page)
		}
	})

	t.Run("JoinsAgainAndRecordsTheConsent", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		if res := rejoin(f, f.public, f.publicList.ConsentVersion); res.status != http.StatusSeeOther {
			t.Fatalf("rejoin: %d %s", res.status, res.body)
		}
		if st := status(t, f, f.public); st != subscribers.StatusConfirmed {
			t.Fatalf("after rejoining: %s", st)
		}
		var action, source string
		var version int
		if err := b.pool.QueryRow(ctx, `SELECT action, source, consent_version FROM consent_records
			WHERE subscriber_id = $1 AND list_id = $2 ORDER BY id DESC LIMIT 1`, f.subID, f.publicList.ID).Scan(&action, &source, &version); err != nil {
			t.Fatal(err)
		}
		if action != "confirm" || source != "web" || version != f.publicList.ConsentVersion {
			t.Fatalf("consent record: %s %s %d", action, source, version)
		}
		// Pressing again changes nothing.
		if res := rejoin(f, f.public, f.publicList.ConsentVersion); res.status != http.StatusOK ||
			!strings.Contains(string(res.body), "cannot be joined again") {
			t.Fatalf("second press: %d %s", res.status, res.body)
		}
	})

	t.Run("RefusesAChangedConsentText", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		text := "Daily offers by push."
		changed, err := subscribers.UpdateList(ctx, b.pool, f.public, subscribers.ListParams{ConsentText: &text})
		if err != nil {
			t.Fatal(err)
		}
		res := rejoin(f, f.public, f.publicList.ConsentVersion)
		if res.status != http.StatusOK || !strings.Contains(string(res.body), "has changed") ||
			!strings.Contains(string(res.body), "Daily offers by push.") {
			t.Fatalf("stale consent: %d %s", res.status, res.body)
		}
		if st := status(t, f, f.public); st != subscribers.StatusUnsubscribed {
			t.Fatalf("joined with a consent text not shown: %s", st)
		}
		if res := rejoin(f, f.public, changed.ConsentVersion); res.status != http.StatusSeeOther {
			t.Fatalf("rejoin with the new text: %d %s", res.status, res.body)
		}
	})

	t.Run("RefusesAPrivateList", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		if res := rejoin(f, f.private, 1); res.status != http.StatusOK || !strings.Contains(string(res.body), "cannot be joined again") {
			t.Fatalf("private list: %d %s", res.status, res.body)
		}
		if st := status(t, f, f.private); st != subscribers.StatusUnsubscribed {
			t.Fatalf("private list joined: %s", st)
		}
	})

	t.Run("OnlyFromThePageItself", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		form := url.Values{"action": {"rejoin"}, "list": {f.public}, "consent_version": {fmt.Sprint(f.publicList.ConsentVersion)}}
		for _, origin := range []string{"", "https://evil.example", "null"} {
			res := b.send(b.app, request{method: http.MethodPost, path: f.page, origin: origin, form: form})
			if res.status != http.StatusForbidden {
				t.Errorf("origin %q: %d %s", origin, res.status, res.body)
			}
		}
		if st := status(t, f, f.public); st != subscribers.StatusUnsubscribed {
			t.Fatalf("joined from another site: %s", st)
		}
	})

	t.Run("NotForABlockedSubscriber", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		blocked := subscribers.StateBlocked
		if _, err := subscribers.Update(ctx, b.pool, f.subID, subscribers.SubscriberParams{State: &blocked}); err != nil {
			t.Fatal(err)
		}
		if res := rejoin(f, f.public, f.publicList.ConsentVersion); res.status != http.StatusOK || !strings.Contains(string(res.body), "cannot be joined again") {
			t.Fatalf("blocked subscriber: %d %s", res.status, res.body)
		}
		if st := status(t, f, f.public); st != subscribers.StatusUnsubscribed {
			t.Fatalf("a blocked subscriber joined: %s", st)
		}
	})

	t.Run("AnExpiredLinkChangesNothing", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		then := time.Now().AddDate(-2, 0, 0)
		old := optin.NewService(b.pool, dbtest.Inserter(b.pool), b.store, nil, nil, optin.Config{PublicURL: b.cfg.PublicURL,
			Secret: b.cfg.Secret, ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: 365 * 24 * time.Hour, SubscriberTokenTTL: time.Hour,
			PendingPurgeAfter: time.Hour, Now: func() time.Time { return then }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		// A second list still joined: pressing "Subscribe again" on an old
		// link must not leave it.
		l, err := subscribers.GetList(ctx, b.pool, b.list)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := subscribers.SetConfirmed(ctx, b.pool, l.ID, f.subID); err != nil {
			t.Fatal(err)
		}
		f.page = b.pathOf(old.PreferencesURL(f.subID))
		res := rejoin(f, f.public, f.publicList.ConsentVersion)
		if res.status != http.StatusOK || !strings.Contains(string(res.body), "too old") {
			t.Fatalf("old link: %d %s", res.status, res.body)
		}
		if st := status(t, f, f.public); st != subscribers.StatusUnsubscribed {
			t.Fatalf("joined through an old link: %s", st)
		}
		if st := status(t, f, b.list); st != subscribers.StatusConfirmed {
			t.Fatalf("an old link's rejoin left another list: %s", st)
		}
	})

	t.Run("RefusesHostileForms", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		for _, body := range []string{"action=rejoin&list=" + f.public, "action=rejoin&list=" + f.public + "&consent_version=x",
			"action=rejoin&list=" + f.public + "&consent_version=%00", "action=rejoin&list=%ff&consent_version=1",
			"action=rejoin&list=no-such-list&consent_version=1"} {
			res := b.send(b.app, request{method: http.MethodPost, path: f.page, origin: b.cfg.PublicURL, rawForm: body})
			if res.status >= 500 || res.status == http.StatusSeeOther {
				t.Errorf("%q: %d %s", body, res.status, res.body)
			}
		}
		if st := status(t, f, f.public); st != subscribers.StatusUnsubscribed {
			t.Fatalf("a hostile form joined: %s", st)
		}
	})
}

// subscribedWithPreferences subscribes the person with external id ext to
// lists (each with an FCM device, through the public API with the app's
// identity proof) and returns the path of their preference page.
func (b *testBundle) subscribedWithPreferences(ext string, lists ...string) string {
	b.t.Helper()
	hmac := optin.IdentityHMAC(b.identity, ext)
	for _, list := range lists {
		res := b.postJSON("/public/v1/subscribe", "", map[string]any{"app": b.appSlug, "list": list, "external_id": ext,
			"identity_hmac": hmac, "device": map[string]any{"platform": "fcm", "token": b.sim.NewFCMToken()}})
		if res.status >= 300 {
			b.t.Fatalf("subscribe to %s: %d %s", list, res.status, res.body)
		}
	}
	res := b.postJSON("/public/v1/preferences", "", map[string]any{"app": b.appSlug, "external_id": ext, "identity_hmac": hmac})
	if res.status != http.StatusOK {
		b.t.Fatalf("preferences: %d %s", res.status, res.body)
	}
	return b.pathOf(res.json(b.t)["preferences_url"].(string))
}
