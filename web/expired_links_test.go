package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// TestExpiredLinks: leaving must be possible from any message Herald ever
// sent. Links are minted by a service whose clock stands two years back, so
// they expired a year ago; they are authentic all the same.
func TestExpiredLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	member := func(b *testBundle) (int64, *subscribers.List) {
		sub, err := subscribers.Create(ctx, b.pool, subscribers.SubscriberParams{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := subscribers.GetList(ctx, b.pool, b.list)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := subscribers.SetConfirmed(ctx, b.pool, l.ID, sub.ID); err != nil {
			t.Fatal(err)
		}
		return sub.ID, l
	}
	past := func(b *testBundle) *optin.Service {
		then := time.Now().AddDate(-2, 0, 0)
		return optin.NewService(b.pool, dbtest.Inserter(b.pool), b.store, nil, nil, optin.Config{PublicURL: b.cfg.PublicURL, Secret: b.cfg.Secret,
			ConfirmTokenTTL: time.Hour, UnsubscribeTokenTTL: 365 * 24 * time.Hour, SubscriberTokenTTL: time.Hour,
			PendingPurgeAfter: time.Hour, Now: func() time.Time { return then }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}

	t.Run("AnExpiredUnsubscribeLinkStillUnsubscribes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		subID, l := member(b)
		link := b.pathOf(past(b).UnsubscribeURL(subID, l.ID))
		page := b.do(http.MethodGet, link, "", "", nil)
		if page.status != http.StatusOK || !strings.Contains(string(page.body), "Unsubscribe from "+l.Name) {
			t.Fatalf("page: %d %s", page.status, page.body)
		}
		done := b.do(http.MethodPost, link, "", "application/x-www-form-urlencoded", nil)
		if done.status != http.StatusOK || !strings.Contains(string(done.body), "You are unsubscribed") {
			t.Fatalf("unsubscribe: %d %s", done.status, done.body)
		}
		// It leads nowhere else: a fresh preferences link would show the
		// lists to whoever holds the old one.
		if strings.Contains(string(done.body), "/preferences/") {
			t.Fatalf("an expired link handed out a preferences link: %s", done.body)
		}
		if got := b.membership(subID); got != subscribers.StatusUnsubscribed {
			t.Fatalf("membership %s", got)
		}
		// A forged one is still refused.
		forged := link[:len(link)-3] + "AAA"
		if r := b.do(http.MethodPost, forged, "", "application/x-www-form-urlencoded", nil); r.status != http.StatusNotFound {
			t.Fatalf("forged link: %d", r.status)
		}
	})

	t.Run("MultipartFormsAreRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		subID, _ := member(b)
		link := b.pathOf(b.optin.PreferencesURL(subID))
		body := "--x\r\nContent-Disposition: form-data; name=\"list\"\r\n\r\na\x00b\r\n--x--\r\n"
		r := b.do(http.MethodPost, link, "", "multipart/form-data; boundary=x", []byte(body))
		if r.status != http.StatusUnsupportedMediaType {
			t.Fatalf("multipart form: %d %s", r.status, r.body)
		}
	})

	t.Run("AnExpiredPreferencesLinkHidesTheListsButLeavesThemAll", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		subID, l := member(b)
		link := b.pathOf(past(b).PreferencesURL(subID))
		page := b.do(http.MethodGet, link, "", "", nil)
		body := string(page.body)
		if page.status != http.StatusOK || strings.Contains(body, l.Name) || !strings.Contains(body, "Leave every list") ||
			strings.Contains(body, "Confirmation links") {
			t.Fatalf("page: %d %s", page.status, body)
		}
		done := b.do(http.MethodPost, link, "", "application/x-www-form-urlencoded", nil)
		if done.status != http.StatusOK || !strings.Contains(string(done.body), "You left every list") {
			t.Fatalf("leave: %d %s", done.status, done.body)
		}
		if got := b.membership(subID); got != subscribers.StatusUnsubscribed {
			t.Fatalf("membership %s", got)
		}
	})
}
