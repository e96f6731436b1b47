package subscribers_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/subscribers"
)

func TestRecordConsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		tx   pgx.Tx
		list *subscribers.List
		sub  *subscribers.Subscriber
	}

	setup := func(t *testing.T) *testBundle {
		t.Helper()
		tx := dbtest.Tx(t)
		sub, err := subscribers.Create(ctx, tx, subscribers.SubscriberParams{})
		if err != nil {
			t.Fatal(err)
		}
		return &testBundle{tx: tx, list: createList(t, tx, "consent-"+suffix()), sub: sub}
	}

	// record records an opt-in request with userAgent and returns the user
	// agent stored.
	record := func(t *testing.T, b *testBundle, userAgent string) string {
		t.Helper()
		ev := subscribers.Evidence{Source: subscribers.SourceWeb, IP: netip.MustParseAddr("192.0.2.1"), UserAgent: userAgent}
		if err := subscribers.RecordConsent(ctx, b.tx, b.sub.ID, subscribers.ActionOptInRequest, ev, 0, b.list.ID); err != nil {
			t.Fatalf("consent with a %d-byte user agent: %v", len(userAgent), err)
		}
		recs, err := subscribers.ConsentRecords(ctx, b.tx, b.sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].UserAgent == nil {
			t.Fatalf("records %+v", recs)
		}
		return *recs[0].UserAgent
	}

	t.Run("LongUserAgentIsCutBetweenCharacters", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The 512-byte limit falls inside the é.
		ua := strings.Repeat("a", 511) + "é and more"
		got := record(t, b, ua)
		if got != strings.Repeat("a", 511) {
			t.Fatalf("stored user agent %q (%d bytes)", got[500:], len(got))
		}
	})

	t.Run("InvalidUTF8UserAgentIsRepaired", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got := record(t, b, "Agent/1.0 \xff\xfe(broken)")
		if !utf8.ValidString(got) || got != "Agent/1.0 \uFFFD(broken)" {
			t.Fatalf("stored user agent %q", got)
		}
	})

	t.Run("NULInUserAgentIsReplaced", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if got := record(t, b, "Agent\x00/1.0"); got != "Agent\uFFFD/1.0" {
			t.Fatalf("stored user agent %q", got)
		}
	})
}
