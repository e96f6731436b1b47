package campaigns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/subscribers"
)

// TestCampaign runs whole campaigns through River: fan-out, batches on each
// provider's queue, the lifecycle, throttles and provider faults.
func TestCampaign(t *testing.T) {
	t.Parallel()

	t.Run("ReachesExactlyItsAudienceOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var audience []member
		for i := range 30 {
			p := []delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush}[i%3]
			locale := "en-US"
			if i%2 == 0 {
				locale = "de-DE"
			}
			audience = append(audience, b.addMember(p, locale, "", ""))
		}
		// Not in the audience: pending, unsubscribed, blocked, inactive device.
		l := must(subscribers.GetList(ctx, b.pool, b.list))
		pending := b.addMember(delivery.PlatformFCM, "en", "", "")
		b.exec(`UPDATE memberships SET status = 'pending' WHERE subscriber_id = $1`, pending.subscriberID)
		left := b.addMember(delivery.PlatformFCM, "en", "", "")
		must(subscribers.Unsubscribe(ctx, b.pool, l.ID, left.subscriberID))
		blocked := b.addMember(delivery.PlatformAPNs, "en", "", "")
		b.exec(`UPDATE subscribers SET state = 'blocked' WHERE id = $1`, blocked.subscriberID)
		inactive := b.addMember(delivery.PlatformWebPush, "en", "", "")
		b.exec(`UPDATE devices SET active = false WHERE id = $1`, inactive.device.ID)

		c := b.create(campaigns.Params{Content: &campaigns.Content{
			Title: "Spring sale", Body: "20% off", URL: "https://shop.example.com/sale",
			Variants: map[string]campaigns.Text{"de": {Title: "Frühlingsangebot", Body: "20 % Rabatt"}},
			Actions:  []campaigns.Action{{Label: "Stop", Type: "unsubscribe"}},
		}})
		preview := must(b.svc.Preview(ctx, c.ID))
		if preview.Devices != 30 || preview.Subscribers != 30 || len(preview.Sample) != 10 {
			t.Fatalf("preview %+v", preview)
		}
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		st := b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
		if st.Sent != 30 || st.Delivered != 30 || st.Unknown != 0 || st.Resent != 0 || *st.AudienceSize != 30 || st.Batches["done"] != 6 {
			t.Fatalf("stats %+v", st)
		}
		// Its life as events, each written with its change: by the test's
		// actor, then by the scheduler.
		events := b.rows(`SELECT topic || ' ' || actor FROM outbox WHERE object_type = 'campaign' AND object_id = $1 ORDER BY id`,
			strconv.FormatInt(c.ID, 10))
		var got []string
		for _, e := range events {
			got = append(got, e[0].(string))
		}
		if want := []string{"campaign.create system:test", "campaign.schedule system:test", "campaign.start system:campaign scheduler",
			"campaign.finish system:campaign scheduler"}; !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
		for i, m := range audience {
			got := b.received(m)
			if len(got) != 1 {
				t.Fatalf("member %d received %d messages", i, len(got))
			}
			want := "Spring sale"
			if i%2 == 0 {
				want = "Frühlingsangebot"
			}
			if payload := string(got[0].Payload); !strings.Contains(payload, want) || !strings.Contains(payload, "http://herald.test/u/") {
				t.Fatalf("member %d payload %s", i, payload)
			}
			// Every provider's replace-the-earlier-one key names the campaign.
			if key := got[0].CollapseKey(); key != fmt.Sprintf("herald-c%d", c.ID) {
				t.Fatalf("member %d (%s) collapse key %q", i, m.device.Platform, key)
			}
		}
		for _, m := range []member{pending, left, blocked, inactive} {
			if got := b.received(m); len(got) != 0 {
				t.Fatalf("non-member received %d", len(got))
			}
		}
		// The per-device unsubscribe link names the campaign's one list.
		var p struct {
			Tag  string            `json:"tag"`
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(b.received(audience[2])[0].Payload, &p); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.Data["unsubscribe_url"], "http://herald.test/u/") || p.Tag != fmt.Sprintf("herald-c%d", c.ID) {
			t.Fatalf("web push payload %+v", p)
		}
		u := must(b.optin.InspectUnsubscribe(ctx, strings.TrimPrefix(p.Data["unsubscribe_url"], "http://herald.test/u/")))
		if u.List == nil || u.List.ID != l.ID {
			t.Fatalf("the unsubscribe link leaves %s, not the campaign's one list", u.What())
		}
	})

	t.Run("FiresOnTime", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.addMember(delivery.PlatformAPNs, "en", "", "")
		at := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
		c := b.create(campaigns.Params{Schedule: &campaigns.Schedule{Mode: "at", At: &at}})
		must(b.svc.ScheduleCampaign(context.Background(), audit.System("test"), c.ID))
		b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
		got := b.received(m)
		if len(got) != 1 {
			t.Fatalf("received %d", len(got))
		}
		if late := got[0].At.Sub(at); late < 0 || late > time.Second {
			t.Fatalf("delivered %v after the scheduled time", late)
		}
	})

	t.Run("LocalTimeWaves", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		b.addMember(delivery.PlatformFCM, "de-DE", "Europe/Berlin", "")
		b.addMember(delivery.PlatformFCM, "en-US", "America/New_York", "")
		b.addMember(delivery.PlatformFCM, "en", "", "") // unknown zone: the campaign's default
		now := time.Date(2030, 12, 1, 5, 0, 0, 0, time.UTC)
		svc := campaigns.NewService(b.pool, dbtest.Inserter(b.pool), nil, nil, campaigns.Config{PublicURL: "http://herald.test", Secret: secret,
			Now: func() time.Time { return now }}, nil)
		c := b.create(campaigns.Params{Schedule: &campaigns.Schedule{Mode: "local", LocalDate: "2030-12-01", LocalTime: "09:00",
			DefaultTimezone: "Asia/Tokyo", QuietHours: &campaigns.QuietHours{Start: "22:00", End: "08:00"}}})
		must(svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		got := map[string]time.Time{}
		for _, w := range b.rows(`SELECT coalesce(timezone, '*'), send_at FROM campaign_waves WHERE campaign_id = $1`, c.ID) {
			got[w[0].(string)] = w[1].(time.Time).UTC()
		}
		want := map[string]time.Time{
			"Europe/Berlin":    time.Date(2030, 12, 1, 8, 0, 0, 0, time.UTC),  // 09:00 CET
			"America/New_York": time.Date(2030, 12, 1, 14, 0, 0, 0, time.UTC), // 09:00 EST
			"":                 now,                                           // 09:00 Tokyo has passed: now (14:00 there, not quiet)
		}
		for tz, at := range want {
			if !got[tz].Equal(at) {
				t.Errorf("wave %q at %v, want %v", tz, got[tz], at)
			}
		}
		if n := b.count(`SELECT count(*) FROM river_job WHERE kind = 'campaigns.start' AND (args->>'campaign_id')::bigint = $1`, c.ID); n != 3 {
			t.Fatalf("%d start jobs", n)
		}
		must(b.svc.Cancel(ctx, audit.System("test"), c.ID))
	})

	t.Run("PauseParksAndResumeWakesWithinASecond", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		// Twenty batches of seven, eight at a time, each held a second by
		// the provider: the pause comes while most have not started.
		for range 140 {
			m := b.addMember(delivery.PlatformAPNs, "en", "", "")
			b.sim.SetFault("apns", m.device.Token, simulator.Fault{Delay: time.Second})
			ms = append(ms, m)
		}
		c := b.create(campaigns.Params{})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		b.waitFor(10*time.Second, func() bool { return b.total(ms) > 0 }, func() string { return "nothing was sent" })
		must(b.svc.Pause(ctx, audit.System("test"), c.ID))
		// Parked: every open batch says so and no job of the campaign is
		// waiting, snoozing or running, so nothing can send.
		b.waitFor(10*time.Second, func() bool {
			return b.count(`SELECT count(*) FROM campaign_batches WHERE campaign_id = $1 AND state = 'pending'`, c.ID) == 0 &&
				b.liveJobs(c.ID) == 0
		}, func() string {
			return fmt.Sprintf("batches %v, live jobs %d", must(b.svc.Stats(ctx, c.ID)).Batches, b.liveJobs(c.ID))
		})
		st := must(b.svc.Stats(ctx, c.ID))
		if st.Batches["parked"] == 0 || st.InFlight != 0 {
			t.Fatalf("paused with nothing parked or something in flight: %+v", st)
		}
		atPause := b.total(ms)
		if atPause >= len(ms) {
			t.Fatalf("the campaign finished (%d) before the pause took hold", atPause)
		}
		resumed := time.Now()
		must(b.svc.Resume(ctx, audit.System("test"), c.ID))
		b.waitFor(5*time.Second, func() bool { return b.total(ms) > atPause }, func() string { return "nothing sent after resume" })
		// The parked batches' next generation started within a second.
		var woke time.Time
		if err := b.pool.QueryRow(ctx, `SELECT min(attempted_at) FROM river_job WHERE kind = 'campaigns.batch'
			AND (args->>'campaign_id')::bigint = $1 AND (args->>'gen')::int = 1`, c.ID).Scan(&woke); err != nil {
			t.Fatal(err)
		}
		if took := woke.Sub(resumed); took > time.Second {
			t.Fatalf("the first parked batch ran %v after resume", took)
		}
		b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
		for _, m := range ms {
			if n := len(b.received(m)); n != 1 {
				t.Fatalf("a device received the campaign %d times", n)
			}
		}
	})

	t.Run("ThrottleHoldsAcrossBatchesAndAfterResume", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 36 {
			ms = append(ms, b.addMember(delivery.PlatformFCM, "en", "", ""))
		}
		// 240 a minute: four a second across all batches (of seven, several
		// at once on the FCM queue).
		throttle := 240
		c := b.create(campaigns.Params{ThrottlePerMinute: &throttle})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		b.waitFor(20*time.Second, func() bool { return b.total(ms) >= 12 }, func() string { return "throttled campaign stalled" })
		must(b.svc.Pause(ctx, audit.System("test"), c.ID))
		b.waitFor(10*time.Second, func() bool { return b.liveJobs(c.ID) == 0 }, func() string { return "pause did not park" })
		// The pause lasts long enough for a per-batch limiter to save up a
		// burst; the shared throttle must not.
		<-time.After(2 * time.Second)
		must(b.svc.Resume(ctx, audit.System("test"), c.ID))
		b.waitStatus(c.ID, campaigns.StatusFinished, 60*time.Second)
		var at []time.Time
		for _, m := range ms {
			got := b.received(m)
			if len(got) != 1 {
				t.Fatalf("a device received the campaign %d times", len(got))
			}
			at = append(at, got[0].At)
		}
		slices.SortFunc(at, func(x, y time.Time) int { return x.Compare(y) })
		// At four a second, any twelve consecutive messages span 2.75 s,
		// whichever batch sent them, also right after the resume. Several
		// batches each at the full rate (the bug this guards against) send
		// twelve in a fraction of a second; the margin leaves room for a
		// machine so busy that requests leave in clumps.
		for i := 11; i < len(at); i++ {
			if span := at[i].Sub(at[i-11]); span < 1500*time.Millisecond {
				t.Fatalf("messages %d..%d went out within %v: faster than 240 a minute", i-11, i, span)
			}
		}
		if total := at[len(at)-1].Sub(at[0]); total < 8*time.Second {
			t.Fatalf("36 messages went out in %v: faster than 240 a minute", total)
		}
	})

	t.Run("CancelStopsForGood", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 20 {
			ms = append(ms, b.addMember(delivery.PlatformAPNs, "en", "", ""))
		}
		throttle := 240
		c := b.create(campaigns.Params{ThrottlePerMinute: &throttle})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		b.waitFor(10*time.Second, func() bool { return b.total(ms) > 0 }, func() string { return "nothing was sent" })
		must(b.svc.Cancel(ctx, audit.System("test"), c.ID))
		b.waitFor(10*time.Second, func() bool { return b.liveJobs(c.ID) == 0 }, func() string { return "jobs still live after cancel" })
		st := must(b.svc.Stats(ctx, c.ID))
		if st.Status != campaigns.StatusCancelled || st.Sent >= 20 || st.Batches["pending"] != 0 || st.Batches["parked"] != 0 || st.InFlight != 0 {
			t.Fatalf("after cancel: %+v", st)
		}
		if n := b.total(ms); int64(n) != st.Sent {
			t.Fatalf("the simulator has %d, the stats say %d sent", n, st.Sent)
		}
		if _, err := b.svc.Resume(ctx, audit.System("test"), c.ID); err == nil {
			t.Fatal("a cancelled campaign resumed")
		}
	})

	t.Run("ThrottledDevicesAreRetriedWithinTheCampaign", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 5 {
			ms = append(ms, b.addMember(delivery.PlatformWebPush, "en", "", ""))
		}
		b.sim.SetFault("webpush", ms[0].device.Token, simulator.Fault{Status: 429, RetryAfter: time.Second, Times: 1})
		c := b.create(campaigns.Params{})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		st := b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
		if st.Delivered != 5 || st.Failed != 0 || st.ThrottledWaiting != 0 {
			t.Fatalf("stats %+v", st)
		}
		got := b.received(ms[0])
		if len(got) != 1 {
			t.Fatalf("the throttled device received %d", len(got))
		}
		// The retry waited for the provider's Retry-After.
		if wait := got[0].At.Sub(b.received(ms[1])[0].At); wait < 900*time.Millisecond {
			t.Fatalf("retried %v after the others, before the provider's Retry-After of 1s", wait)
		}
		rows := must(b.svc.Deliveries(ctx, c.ID, campaigns.DeliveryFilter{}))
		if rows[0].Attempts != 2 || rows[0].Status != "delivered" {
			t.Fatalf("throttled device's row %+v", rows[0])
		}
	})

	t.Run("ThrottledPastTheTTLFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformWebPush, "en", "", "")
		b.sim.SetFault("webpush", m.device.Token, simulator.Fault{Status: 429, RetryAfter: time.Hour})
		c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Flash sale", TTLSeconds: 60}})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		st := b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
		if st.FailedByReason["throttled"] != 1 || st.ThrottledWaiting != 0 {
			t.Fatalf("stats %+v", st)
		}
		row := must(b.svc.Deliveries(ctx, c.ID, campaigns.DeliveryFilter{Status: "failed", Reason: "throttled"}))
		if len(row) != 1 || row[0].Reason == nil || !strings.Contains(*row[0].Reason, "TTL") {
			t.Fatalf("rows %+v", row)
		}
	})

	t.Run("ProviderFaultsThenRetryFailed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 12 {
			ms = append(ms, b.addMember(delivery.PlatformFCM, "en", "", ""))
		}
		gone := b.addMember(delivery.PlatformWebPush, "en", "", "")
		b.sim.SetFault("webpush", gone.device.Token, simulator.Fault{Status: 410, Reason: "gone"})
		for _, m := range ms[:5] {
			b.sim.SetFault("fcm", m.device.Token, simulator.Fault{Status: 500, Reason: "INTERNAL", Times: 1})
		}
		c := b.create(campaigns.Params{})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		st := b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
		if st.Delivered != 7 || st.FailedByReason["retryable"] != 5 || st.DevicesDeactivated != 1 {
			t.Fatalf("stats %+v", st)
		}
		if b.count(`SELECT count(*) FROM devices WHERE id = $1 AND active`, gone.device.ID) != 0 {
			t.Fatal("gone device still active")
		}
		if n := must(b.svc.RetryFailed(ctx, audit.System("test"), c.ID, campaigns.RetryOptions{})); n != 5 {
			t.Fatalf("retry queued %d, want 5", n)
		}
		// The round closes itself just after its last outcome is written.
		b.waitFor(20*time.Second, func() bool {
			st := must(b.svc.Stats(ctx, c.ID))
			return st.Delivered == 12 && st.RetryRounds["done"] == 1
		}, func() string { return fmt.Sprintf("after retry: %+v", must(b.svc.Stats(ctx, c.ID))) })
		for _, m := range ms {
			if n := len(b.received(m)); n != 1 {
				t.Fatalf("device received %d", n)
			}
		}
		if got := b.received(gone); len(got) != 0 {
			t.Fatal("gone device received")
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.RetryRounds["done"] != 1 {
			t.Fatalf("retry rounds %v", st.RetryRounds)
		}
	})

	t.Run("RefusedCredentialsFailTheCampaignEarly", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		for range 40 {
			b.addMember(delivery.PlatformFCM, "en", "", "")
		}
		sec := must(b.store.Secrets(ctx, b.pool, b.app.ID))
		sec.Credentials.FCM.AccessToken = "revoked"
		if err := b.store.SetSecrets(ctx, b.pool, b.app.ID, sec); err != nil {
			t.Fatal(err)
		}
		// 600 a minute spreads the six batches 0.7 s apart, so the first
		// refusal comes before the later batches start.
		throttle := 600
		c := b.create(campaigns.Params{ThrottlePerMinute: &throttle})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		st := b.waitStatus(c.ID, campaigns.StatusFailed, 30*time.Second)
		got := must(b.svc.Get(ctx, c.ID))
		if got.FailureReason == nil || !strings.Contains(*got.FailureReason, "credentials") || st.Delivered != 0 {
			t.Fatalf("failed campaign %+v stats %+v", got, st)
		}
		b.waitFor(10*time.Second, func() bool { return b.liveJobs(c.ID) == 0 }, func() string { return "jobs still live" })
		st = must(b.svc.Stats(ctx, c.ID))
		// The audience was not burned: later batches stopped before claiming.
		if st.Sent >= 40 || st.Batches["cancelled"] == 0 || st.Batches["pending"] != 0 {
			t.Fatalf("stats %+v: the campaign did not stop early", st)
		}
	})

	t.Run("OneProviderDownDoesNotHoldUpTheOthers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var slow, fast []member
		for range 14 {
			m := b.addMember(delivery.PlatformAPNs, "en", "", "")
			b.sim.SetFault("apns", m.device.Token, simulator.Fault{Delay: 3 * time.Second})
			slow = append(slow, m)
			fast = append(fast, b.addMember(delivery.PlatformFCM, "en", "", ""), b.addMember(delivery.PlatformWebPush, "en", "", ""))
		}
		c := b.create(campaigns.Params{})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		b.waitFor(2500*time.Millisecond, func() bool { return b.total(fast) == len(fast) },
			func() string { return "FCM and Web Push waited for the slow APNs batches" })
		b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
		for _, m := range slow {
			if len(b.received(m)) != 1 {
				t.Fatal("a slow APNs device did not get the campaign once")
			}
		}
	})
}
