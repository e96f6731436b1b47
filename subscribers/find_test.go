package subscribers_test

import (
	"context"
	"slices"
	"testing"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/subscribers"
)

// TestFind: a list's members by keyset pages, with every filter that can
// go with them; what is not a member, or is filtered out, never shows.
func TestFind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	list := createList(t, pool, "find-"+suffix())
	other := createList(t, pool, "find-other-"+suffix())
	var confirmed, pending []int64
	for i := range 7 {
		s, err := subscribers.Create(ctx, pool, subscribers.SubscriberParams{})
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0:
			if _, err := subscribers.SetConfirmed(ctx, pool, list.ID, s.ID); err != nil {
				t.Fatal(err)
			}
			confirmed = append(confirmed, s.ID)
		case 1:
			if _, err := pool.Exec(ctx, `INSERT INTO memberships (list_id, subscriber_id, status, pending_at) VALUES ($1, $2, 'pending', now())`,
				list.ID, s.ID); err != nil {
				t.Fatal(err)
			}
			pending = append(pending, s.ID)
		default:
			if _, err := subscribers.SetConfirmed(ctx, pool, other.ID, s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One member is blocked: a state filter leaves them out.
	if _, err := pool.Exec(ctx, `UPDATE subscribers SET state = 'blocked' WHERE id = $1`, confirmed[1]); err != nil {
		t.Fatal(err)
	}
	ids := func(f subscribers.Filter, p subscribers.Page) []int64 {
		t.Helper()
		got, err := subscribers.Find(ctx, pool, f, p)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, s := range got {
			out = append(out, s.ID)
		}
		return out
	}
	all := append(slices.Clone(confirmed), pending...)
	slices.Sort(all)
	if got := ids(subscribers.Filter{ListID: list.ID}, subscribers.Page{Limit: 100}); !slices.Equal(got, all) {
		t.Fatalf("members %v, want %v", got, all)
	}
	// Two at a time, each page after the last id of the one before.
	var paged []int64
	for after := int64(0); ; {
		page := ids(subscribers.Filter{ListID: list.ID}, subscribers.Page{After: after, Limit: 2})
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("paged %v, want %v", paged, all)
	}
	if got := ids(subscribers.Filter{ListID: list.ID, Status: subscribers.StatusPending}, subscribers.Page{Limit: 100}); !slices.Equal(got, pending) {
		t.Fatalf("pending %v, want %v", got, pending)
	}
	// Found by external id within the list, or not a member of it.
	ext := "find-ext-" + suffix()
	if _, err := pool.Exec(ctx, `UPDATE subscribers SET external_id = $2 WHERE id = $1`, pending[0], ext); err != nil {
		t.Fatal(err)
	}
	if got := ids(subscribers.Filter{ListID: list.ID, ExternalID: ext}, subscribers.Page{Limit: 100}); !slices.Equal(got, pending[:1]) {
		t.Fatalf("by external id in the list: %v", got)
	}
	if got := ids(subscribers.Filter{ListID: list.ID, ExternalID: ext, Status: subscribers.StatusConfirmed}, subscribers.Page{Limit: 100}); len(got) != 0 {
		t.Fatalf("by external id among the confirmed: %v", got)
	}
	if got := ids(subscribers.Filter{ListID: other.ID, ExternalID: ext}, subscribers.Page{Limit: 100}); len(got) != 0 {
		t.Fatalf("by external id in another list: %v", got)
	}
	want := slices.DeleteFunc(slices.Clone(confirmed), func(id int64) bool { return id == confirmed[1] })
	if got := ids(subscribers.Filter{ListID: list.ID, Status: subscribers.StatusConfirmed, State: subscribers.StateActive},
		subscribers.Page{Limit: 100}); !slices.Equal(got, want) {
		t.Fatalf("active confirmed %v, want %v", got, want)
	}
}
