package optin_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/optin"
)

// TestLinksOnAFailingDatabase checks that the confirmation and unsubscribe
// links report a database failure as one (a 500 the operator sees in the
// log), never as a problem with the link (a page telling the person their
// link is not valid, or that there is nothing to confirm).
func TestLinksOnAFailingDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type linkBundle struct {
		*testBundle
		subscriberID int64
		confirm      string // a confirmation link token, issued and not used
	}

	setup := func(t *testing.T) *linkBundle {
		t.Helper()
		b := setupService(t)
		token := b.sim.NewFCMToken()
		res, err := b.svc.Subscribe(ctx, audit.Public(netip.Addr{}), optin.SubscribeRequest{Identity: optin.Identity{App: b.app.Slug}, List: b.list.Slug,
			Device: optin.DeviceRequest{Platform: "fcm", Token: token}}, optin.Client{})
		if err != nil {
			t.Fatal(err)
		}
		newJobRunner(t, b.svc).workQueued(t, res.SubscriberID)
		got := b.sim.Received("fcm", token)
		if len(got) != 1 {
			t.Fatalf("device received %d confirmations", len(got))
		}
		return &linkBundle{testBundle: b, subscriberID: res.SubscriberID, confirm: confirmToken(t, got[0].Payload)}
	}

	// failingService is the service over a pool in which statements
	// containing match fail.
	failingService := func(t *testing.T, match string) *optin.Service {
		t.Helper()
		pool := dbtest.FailingPool(t, match)
		return optin.NewService(pool, dbtest.Inserter(pool), apps.NewStore(testSecret), nil, nil, testConfig, discard())
	}

	requireDatabaseError := func(t *testing.T, err error) {
		t.Helper()
		for _, linkErr := range []error{optin.ErrTokenInvalid, optin.ErrTokenExpired, optin.ErrTokenUsed, optin.ErrNothingToConfirm} {
			if errors.Is(err, linkErr) {
				t.Fatalf("a database failure was reported as %q", err)
			}
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want the database failure", err)
		}
	}

	t.Run("InspectConfirm", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := failingService(t, "FROM lists WHERE id").InspectConfirm(ctx, b.confirm)
		requireDatabaseError(t, err)
	})

	t.Run("ConfirmReadingTheList", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := failingService(t, "FROM lists WHERE id").Confirm(ctx, audit.Public(netip.Addr{}), b.confirm, optin.Client{})
		requireDatabaseError(t, err)
		// The failed attempt used nothing up.
		if _, err := b.svc.Confirm(ctx, audit.Public(netip.Addr{}), b.confirm, optin.Client{}); err != nil {
			t.Fatalf("confirming after the failure: %v", err)
		}
	})

	t.Run("ConfirmTellingUsedFromUnknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.svc.Confirm(ctx, audit.Public(netip.Addr{}), b.confirm, optin.Client{}); err != nil {
			t.Fatal(err)
		}
		_, err := failingService(t, "SELECT true FROM optin_tokens").Confirm(ctx, audit.Public(netip.Addr{}), b.confirm, optin.Client{})
		requireDatabaseError(t, err)
	})

	t.Run("InspectUnsubscribe", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		link, err := url.Parse(b.svc.UnsubscribeURL(b.subscriberID, b.list.ID))
		if err != nil {
			t.Fatal(err)
		}
		token, err := url.PathUnescape(strings.TrimPrefix(link.Path, "/u/"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = failingService(t, "FROM lists WHERE id").InspectUnsubscribe(ctx, token)
		requireDatabaseError(t, err)
	})
}
