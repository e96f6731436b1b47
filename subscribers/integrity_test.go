package subscribers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/subscribers"
)

// TestSetWiseIntegrity checks the guarantees that replaced the foreign keys
// of memberships and consent records (migration 010).
//
// It runs alone (not in parallel): other tests of the package count every
// consent record in the schema.
func TestSetWiseIntegrity(t *testing.T) {
	t.Run("SubscribersAreNeverDeleted", func(t *testing.T) {
		ctx := context.Background()
		pool := dbtest.Pool(t)
		sub, err := subscribers.Create(ctx, pool, subscribers.SubscriberParams{ExternalID: ptr("kept-" + suffix())})
		if err != nil {
			t.Fatal(err)
		}
		_, err = pool.Exec(ctx, `DELETE FROM subscribers WHERE id = $1`, sub.ID)
		if err == nil || !strings.Contains(err.Error(), "never deleted") {
			t.Fatalf("deleting a subscriber: %v, want it refused", err)
		}
	})

	t.Run("ListDeletionTakesItsMemberships", func(t *testing.T) {
		ctx := context.Background()
		pool := dbtest.Pool(t)
		s := suffix()
		l := createList(t, pool, "gone-"+s)
		sub, err := subscribers.Create(ctx, pool, subscribers.SubscriberParams{ExternalID: ptr("member-" + s)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := subscribers.SetConfirmed(ctx, pool, l.ID, sub.ID); err != nil {
			t.Fatal(err)
		}
		if err := subscribers.DeleteList(ctx, pool, l.Slug); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE list_id = $1`, l.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d memberships of the deleted list (%v)", n, err)
		}
		// A membership for a list that is gone is not written.
		if changed, err := subscribers.SetConfirmed(ctx, pool, l.ID, sub.ID); err != nil || changed {
			t.Fatalf("confirming for a deleted list: changed %v, %v", changed, err)
		}
	})

	t.Run("AnEmailOnlyRowMeetsItsPersonFromAnotherShard", func(t *testing.T) {
		ctx := context.Background()
		pool := dbtest.Pool(t)
		s := suffix()
		l := createList(t, pool, "meet-"+s)
		// Each person twice: once by external_id with an email, once by
		// that email alone. Rows with an external_id are spread over the
		// shards; the email-only rows merge after them and find the same
		// person, so nobody is created twice and nothing waits forever.
		rows := []string{"external_id,email,lists,consent_source"}
		for i := range 60 {
			rows = append(rows, fmt.Sprintf("m%d-%s,m%d-%s@example.com,%s,fair", i, s, i, s, l.Slug))
		}
		for i := range 60 {
			rows = append(rows, fmt.Sprintf(",m%d-%s@example.com,%s,fair", i, s, l.Slug))
		}
		imp := runImport(t, strings.Join(rows, "\n")+"\n")
		if imp.RowsImported != 120 || imp.RowsFailed != 0 {
			t.Fatalf("import %+v", imp)
		}
		var people, members, consents int
		if err := pool.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM subscribers WHERE email LIKE $2),
				(SELECT count(*) FROM memberships WHERE list_id = $1),
				(SELECT count(*) FROM consent_records WHERE list_id = $1)`, l.ID, "m%-"+s+"@example.com").
			Scan(&people, &members, &consents); err != nil {
			t.Fatal(err)
		}
		if people != 60 || members != 60 || consents != 60 {
			t.Fatalf("%d people, %d memberships, %d consent records; want 60 each", people, members, consents)
		}
	})

	t.Run("ImportLeavesNoOrphansAndConfirmsPending", func(t *testing.T) {
		ctx := context.Background()
		pool := dbtest.Pool(t)
		s := suffix()
		l := createList(t, pool, "orphans-"+s)
		pending, err := subscribers.Create(ctx, pool, subscribers.SubscriberParams{ExternalID: ptr("pending-" + s)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := subscribers.Request(ctx, pool, l, pending.ID, 0); err != nil {
			t.Fatal(err)
		}
		var rows []string
		rows = append(rows, "external_id,email,lists,consent_source", fmt.Sprintf("pending-%s,,%s,fair", s, l.Slug))
		for i := range 300 {
			rows = append(rows, fmt.Sprintf("o%d-%s,o%d-%s@example.com,%s,fair", i, s, i, s, l.Slug))
		}
		imp := runImport(t, strings.Join(rows, "\n")+"\n")
		if imp.RowsImported != 301 || imp.RowsFailed != 0 {
			t.Fatalf("import %+v", imp)
		}
		var members, consents, orphans int
		if err := pool.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM memberships WHERE list_id = $1 AND status = 'confirmed'),
				(SELECT count(*) FROM consent_records WHERE list_id = $1 AND action = 'confirm' AND source = 'import'),
				(SELECT count(*) FROM memberships m WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = m.subscriber_id)
					OR NOT EXISTS (SELECT 1 FROM lists x WHERE x.id = m.list_id))
				+ (SELECT count(*) FROM consent_records c WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = c.subscriber_id))`,
			l.ID).Scan(&members, &consents, &orphans); err != nil {
			t.Fatal(err)
		}
		if members != 301 || consents != 301 || orphans != 0 {
			t.Fatalf("%d confirmed, %d consent records, %d orphans; want 301, 301, 0", members, consents, orphans)
		}
	})
}
