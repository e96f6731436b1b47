package conversations_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/subscribers"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestCampaignReply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		tx         pgx.Tx
		appID      int64
		campaignID int64
		sub        *subscribers.Subscriber
	}

	setup := func(t *testing.T) *testBundle {
		t.Helper()
		tx := dbtest.Tx(t)
		b := make([]byte, 6)
		rand.Read(b)
		app, err := apps.NewStore([]byte("conversations-test-secret-conversations")).Create(ctx, tx, "app-"+hex.EncodeToString(b), "App", "mailto:ops@example.com")
		if err != nil {
			t.Fatal(err)
		}
		sub, err := subscribers.Create(ctx, tx, subscribers.SubscriberParams{})
		if err != nil {
			t.Fatal(err)
		}
		return &testBundle{tx: tx, appID: app.ID, sub: sub, campaignID: newCampaign(t, tx, app.ID)}
	}

	messages := func(t *testing.T, b *testBundle) []conversations.Message {
		t.Helper()
		convs, _, err := conversations.OfSubscriber(ctx, b.tx, nil, b.sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []conversations.Message
		for _, c := range convs {
			out = append(out, c.Messages...)
		}
		return out
	}

	t.Run("PostedTwiceLandsOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for i, want := range []bool{true, false} { // a service worker retrying its POST
			_, added, err := conversations.CampaignReplyInTx(ctx, b.tx, audit.System("test"), b.sub.ID, b.appID, b.campaignID, "a0", "Yes please")
			if err != nil || added != want {
				t.Fatalf("post %d: added %v, %v; want added %v", i+1, added, err, want)
			}
		}
		if m := messages(t, b); len(m) != 1 || m[0].Body != "Yes please" {
			t.Fatalf("messages %+v, want the reply once", m)
		}
	})

	t.Run("AnErasedPersonsReplyIsDropped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if err := subscribers.Erase(ctx, b.tx, b.sub.ID); err != nil {
			t.Fatal(err)
		}
		_, added, err := conversations.CampaignReplyInTx(ctx, b.tx, audit.System("test"), b.sub.ID, b.appID, b.campaignID, "a0", "Yes please")
		if err != nil || added {
			t.Fatalf("added %v, %v; an erased person's reply must not land", added, err)
		}
		if m := messages(t, b); len(m) != 0 {
			t.Fatalf("messages %+v after erasure", m)
		}
	})

	t.Run("EachButtonAndCampaignLands", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		other := newCampaign(t, b.tx, b.appID)
		for _, r := range []struct {
			campaignID int64
			action     string
		}{{b.campaignID, "a0"}, {b.campaignID, "a1"}, {other, "a0"}} {
			if _, added, err := conversations.CampaignReplyInTx(ctx, b.tx, audit.System("test"), b.sub.ID, b.appID, r.campaignID, r.action, "Reply "+r.action); err != nil || !added {
				t.Fatalf("reply %+v: added %v, %v", r, added, err)
			}
		}
		if m := messages(t, b); len(m) != 3 {
			t.Fatalf("%d messages, want 3", len(m))
		}
		replies, err := conversations.CampaignReplies(ctx, b.tx, b.sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(replies) != 3 {
			t.Fatalf("campaign replies %+v, want 3", replies)
		}
	})

	t.Run("EraseRemovesRepliesToo", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, _, err := conversations.CampaignReplyInTx(ctx, b.tx, audit.System("test"), b.sub.ID, b.appID, b.campaignID, "a0", "Yes please"); err != nil {
			t.Fatal(err)
		}
		if err := conversations.Erase(ctx, b.tx, nil, b.sub.ID); err != nil {
			t.Fatal(err)
		}
		if m := messages(t, b); len(m) != 0 {
			t.Fatalf("messages survived erasure: %+v", m)
		}
		replies, err := conversations.CampaignReplies(ctx, b.tx, b.sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(replies) != 0 {
			t.Fatalf("campaign replies survived erasure: %+v", replies)
		}
	})
}

// newCampaign inserts a bare campaign row for replies to refer to; package
// campaigns owns what a real one holds.
func newCampaign(t *testing.T, db database.DB, appID int64) int64 {
	t.Helper()
	var id int64
	if err := db.QueryRow(context.Background(), `INSERT INTO campaigns (app_id, name, content, audience)
		VALUES ($1, 'Replies', '{}', '{}') RETURNING id`, appID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
