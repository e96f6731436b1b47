package subscribers_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/subscribers"
)

func TestService(t *testing.T) {
	t.Parallel()
	key := audit.APIKey(42, "marketer", "crm", netip.MustParseAddr("192.0.2.4"))

	setup := func(t *testing.T) (*subscribers.Service, func(q string, args ...any) int) {
		t.Helper()
		pool := dbtest.Pool(t)
		count := func(q string, args ...any) int {
			t.Helper()
			var n int
			if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		return subscribers.NewService(pool, dbtest.Inserter(pool), nil), count
	}

	t.Run("AChangeIsRecordedWithItsActorAndAFailedOneIsNot", func(t *testing.T) {
		t.Parallel()
		svc, count := setup(t)
		ctx := context.Background()
		slug, name := "svc-"+suffix(), "Service list"
		if _, err := svc.CreateList(ctx, key, subscribers.ListParams{Slug: &slug, Name: &name}); err != nil {
			t.Fatal(err)
		}
		const entries = `SELECT count(*) FROM audit_log WHERE action = 'list.create' AND object_id = $1 AND actor_type = 'api_key' AND actor_id = 42`
		const events = `SELECT count(*) FROM outbox WHERE topic = 'list.create' AND object_id = $1`
		if count(entries, slug) != 1 || count(events, slug) != 1 {
			t.Fatal("no audit entry or event for the list")
		}
		if _, err := svc.CreateList(ctx, key, subscribers.ListParams{Slug: &slug, Name: &name}); !errors.Is(err, subscribers.ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		if count(entries, slug) != 1 || count(events, slug) != 1 {
			t.Fatal("a refused list was recorded")
		}
	})

	t.Run("SubscribersAreRecordedByFieldNamesOnly", func(t *testing.T) {
		t.Parallel()
		svc, count := setup(t)
		ctx := context.Background()
		email := "private-" + suffix() + "@example.com"
		sub, err := svc.Create(ctx, key, subscribers.SubscriberParams{Email: &email})
		if err != nil {
			t.Fatal(err)
		}
		id := strconv.FormatInt(sub.ID, 10)
		if count(`SELECT count(*) FROM audit_log WHERE action = 'subscriber.create' AND object_id = $1 AND summary->'fields' ? 'email'`, id) != 1 {
			t.Fatal("no audit entry naming the field")
		}
		if count(`SELECT count(*) FROM audit_log WHERE strpos(summary::text, $1) > 0`, strings.Split(email, "@")[0]) != 0 {
			t.Fatal("the audit log holds the subscriber's email address")
		}
	})
}
