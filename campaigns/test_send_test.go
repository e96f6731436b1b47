package campaigns_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// TestTestSend checks that a test send reaches only people who may receive
// marketing (or test devices), each device once, within its rate, and
// leaves a record.
func TestTestSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ReachesOnlyPeopleWhoMayReceiveMarketing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := must(subscribers.GetList(ctx, b.pool, b.list))
		tester := b.addMember(delivery.PlatformFCM, "de-DE", "", "")
		left := b.addMember(delivery.PlatformFCM, "en", "", "")
		must(subscribers.Unsubscribe(ctx, b.pool, 0, left.subscriberID)) // every list
		blocked := b.addMember(delivery.PlatformFCM, "en", "", "")
		b.exec(`UPDATE subscribers SET state = 'blocked' WHERE id = $1`, blocked.subscriberID)
		pending := b.addMember(delivery.PlatformFCM, "en", "", "")
		b.exec(`UPDATE memberships SET status = 'pending' WHERE subscriber_id = $1 AND list_id = $2`, pending.subscriberID, l.ID)
		staff := b.addMember(delivery.PlatformWebPush, "en", "", "")
		must(subscribers.Unsubscribe(ctx, b.pool, 0, staff.subscriberID))
		must(subscribers.MarkTestDevice(ctx, b.pool, staff.subscriberID, staff.device.ID, true))
		bystander := b.addMember(delivery.PlatformFCM, "en", "", "")

		c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Hello", Variants: map[string]campaigns.Text{"de": {Title: "Hallo"}}}})
		ids := []int64{tester.subscriberID, tester.subscriberID, left.subscriberID, blocked.subscriberID, pending.subscriberID,
			staff.subscriberID, 1 << 40}
		rep, err := b.svc.TestSend(ctx, audit.APIKey(7, "admin", "ci", netip.Addr{}), c.ID, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 2 || rep.Results[0].DeviceID != tester.device.ID || rep.Results[1].DeviceID != staff.device.ID {
			t.Fatalf("results %+v", rep.Results)
		}
		skipped := map[int64]string{}
		for _, s := range rep.Skipped {
			skipped[s.SubscriberID] = s.Reason
		}
		for _, m := range []member{left, pending} {
			if !strings.Contains(skipped[m.subscriberID], "no confirmed membership") {
				t.Fatalf("skipped %v", skipped)
			}
		}
		if skipped[blocked.subscriberID] != "the subscriber is blocked" || skipped[1<<40] != "no such subscriber" || len(skipped) != 4 {
			t.Fatalf("skipped %v", skipped)
		}
		if got := b.received(tester); len(got) != 1 || !strings.Contains(string(got[0].Payload), "[Test] Hallo") {
			t.Fatalf("the tester received %d (named twice, sent once)", len(got))
		}
		if n := len(b.received(staff)); n != 1 {
			t.Fatalf("the test device received %d", n)
		}
		for _, m := range []member{left, blocked, pending, bystander} {
			if n := len(b.received(m)); n != 0 {
				t.Fatalf("subscriber %d received the test", m.subscriberID)
			}
		}
		st := must(b.svc.Stats(ctx, c.ID))
		if st.Status != campaigns.StatusDraft || st.Sent != 0 {
			t.Fatalf("a test send changed the campaign: %+v", st)
		}
		// The record of it: who, whom, what it reached.
		row := b.rows(`SELECT actor, subscriber_ids, device_ids, jsonb_array_length(outcomes) FROM campaign_test_sends WHERE campaign_id = $1`, c.ID)
		if len(row) != 1 || row[0][0] != "api_key:7" || len(row[0][1].([]any)) != 6 || len(row[0][2].([]any)) != 2 || row[0][3] != int32(2) {
			t.Fatalf("trail %v", row)
		}
		// And the audit log's, written with it.
		if n := b.rows(`SELECT id FROM audit_log WHERE action = 'campaign.test_send' AND object_id = $1 AND actor_id = 7`, strconv.FormatInt(c.ID, 10)); len(n) != 1 {
			t.Fatalf("%d audit entries for the test send", len(n))
		}
	})

	t.Run("IsRateLimitedPerCampaign", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		tester := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.create(campaigns.Params{})
		for i := range campaigns.TestSendsPerMinute {
			if _, err := b.svc.TestSend(ctx, audit.System("test"), c.ID, []int64{tester.subscriberID}); err != nil {
				t.Fatalf("test send %d: %v", i+1, err)
			}
		}
		if _, err := b.svc.TestSend(ctx, audit.System("test"), c.ID, []int64{tester.subscriberID}); !errors.Is(err, campaigns.ErrTestSendLimit) {
			t.Fatalf("test send %d: %v", campaigns.TestSendsPerMinute+1, err)
		}
		if n := len(b.received(tester)); n != campaigns.TestSendsPerMinute {
			t.Fatalf("received %d", n)
		}
	})

	t.Run("RefusesBadInput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.create(campaigns.Params{})
		for _, ids := range [][]int64{nil, make([]int64, 21)} {
			if _, err := b.svc.TestSend(ctx, audit.System("test"), c.ID, ids); err == nil {
				t.Fatalf("%d ids accepted", len(ids))
			}
		}
	})
}
