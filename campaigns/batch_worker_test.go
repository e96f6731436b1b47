package campaigns_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/demo"
	"github.com/herald-im/herald/subscribers"
)

// running arranges, by hand, a running campaign whose one wave is fanned out
// into one batch of platform's devices (after, upto], as the start job
// would, without queueing a job: the test runs the batch itself.
func (b *testBundle) running(params campaigns.Params, platform delivery.Platform, after, upto int64) *campaigns.Campaign {
	b.t.Helper()
	c := b.create(params)
	b.exec(`UPDATE campaigns SET status = 'running', started_at = now(), audience_bound = (SELECT max(id) FROM devices),
		next_batch = 1 WHERE id = $1`, c.ID)
	b.exec(`INSERT INTO campaign_waves (campaign_id, wave, send_at, fanned_out) VALUES ($1, 0, now(), true)`, c.ID)
	b.exec(`INSERT INTO campaign_batches (campaign_id, batch, wave, platform, after_id, upto_id) VALUES ($1, 0, 0, $2, $3, $4)`,
		c.ID, platform, after, upto)
	return c
}

// claimByHand leaves delivery rows as a run that died after claiming them.
func (b *testBundle) claimByHand(c *campaigns.Campaign, ms ...member) {
	for _, m := range ms {
		b.exec(`INSERT INTO deliveries (campaign_id, device_id, subscriber_id, batch, platform, status)
			VALUES ($1, $2, $3, 0, $4, 'claimed')`, c.ID, m.device.ID, m.subscriberID, m.device.Platform)
	}
}

// seedDevices makes n confirmed FCM members in one go and returns their
// devices by id.
func (b *testBundle) seedDevices(n int) []member {
	b.t.Helper()
	ctx := context.Background()
	l := must(subscribers.GetList(ctx, b.pool, b.list))
	if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		return demo.Seed(ctx, tx, b.app.ID, l.ID, n, "seed-"+randomID(), b.sim, delivery.PlatformFCM)
	}); err != nil {
		b.t.Fatal(err)
	}
	var ms []member
	for _, r := range b.rows(`SELECT id, subscriber_id, token FROM devices WHERE app_id = $1 ORDER BY id`, b.app.ID) {
		ms = append(ms, member{subscriberID: r[1].(int64),
			device: subscribers.Device{ID: r[0].(int64), Platform: delivery.PlatformFCM, Token: r[2].(string)}})
	}
	if len(ms) != n {
		b.t.Fatalf("%d devices, want %d", len(ms), n)
	}
	return ms
}

// once checks that a member received the campaign, more than once only as
// a resend under the campaign's collapse key, and returns how often.
func (b *testBundle) once(c *campaigns.Campaign, m member) int {
	b.t.Helper()
	got := b.received(m)
	if len(got) == 0 {
		b.t.Fatalf("%s device %d never received the campaign", m.device.Platform, m.device.ID)
	}
	for _, r := range got {
		if key := r.CollapseKey(); key != fmt.Sprintf("herald-c%d", c.ID) {
			b.t.Fatalf("%s device %d received a copy with collapse key %q", m.device.Platform, m.device.ID, key)
		}
	}
	return len(got)
}

func isSnooze(err error) bool {
	var snooze *rivertype.JobSnoozeError
	return errors.As(err, &snooze)
}

// TestBatchWorker runs batch jobs by hand against arranged states: crashes,
// resends, draining, and database faults at chosen statements.
func TestBatchWorker(t *testing.T) {
	t.Parallel()

	t.Run("ClaimsOfADeadRunAreUnknownThenResentUnderTheCollapseKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 5 {
			ms = append(ms, b.addMember(delivery.PlatformAPNs, "en", "", ""))
		}
		c := b.running(campaigns.Params{}, delivery.PlatformAPNs, ms[0].device.ID-1, ms[4].device.ID)
		b.claimByHand(c, ms[:2]...)
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 2)); err != nil {
			t.Fatal(err)
		}
		st := must(b.svc.Stats(ctx, c.ID))
		if st.Status != campaigns.StatusFinished || st.Delivered != 5 || st.Unknown != 0 || st.Resent != 2 {
			t.Fatalf("stats %+v", st)
		}
		for _, m := range ms {
			if n := b.once(c, m); n != 1 {
				t.Fatalf("received %d", n)
			}
		}
	})

	t.Run("WithResendUnknownOffUnknownsStayUnknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 3 {
			ms = append(ms, b.addMember(delivery.PlatformFCM, "en", "", ""))
		}
		off := false
		c := b.running(campaigns.Params{ResendUnknown: &off}, delivery.PlatformFCM, ms[0].device.ID-1, ms[2].device.ID)
		b.claimByHand(c, ms[0])
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 2)); err != nil {
			t.Fatal(err)
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Unknown != 1 || st.Delivered != 2 || st.Resent != 0 {
			t.Fatalf("stats %+v", st)
		}
		if n := len(b.received(ms[0])); n != 0 {
			t.Fatalf("the unknown device was sent %d", n)
		}
	})

	t.Run("CrashMidSliceCostsOneSliceWhichIsResent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		total := 2*campaigns.ClaimSlice + 3
		ms := b.seedDevices(total)
		// The first device answers late, so its slice is still in flight
		// when the run loses its database (its process dies).
		b.sim.SetFault("fcm", ms[0].device.Token, simulator.Fault{Delay: 3 * time.Second, Times: 1})
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, ms[0].device.ID-1, ms[total-1].device.ID)
		doomed := must(pgxpool.NewWithConfig(ctx, b.pool.Config()))
		doomedSvc, _ := newServices(doomed, b.store, b.sim)
		// The process dies while its first slice is claimed and in flight
		// (the late device holds it there for 3 s), whenever that is on a
		// busy machine.
		go func() {
			defer doomed.Close()
			deadline := time.After(20 * time.Second)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for b.deliveryRows(c.ID)["claimed"] < campaigns.ClaimSlice {
				select {
				case <-tick.C:
				case <-deadline:
					return
				}
			}
		}()
		if err := (&campaigns.BatchWorker{Service: doomedSvc}).Work(ctx, batchJob(c.ID, 0, 1)); err == nil {
			t.Fatal("the crashed run reported success")
		}
		if rows := b.deliveryRows(c.ID); rows["claimed"] != campaigns.ClaimSlice {
			t.Fatalf("after the crash: %v, want one slice claimed", rows)
		}
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 2)); err != nil {
			t.Fatal(err)
		}
		st := must(b.svc.Stats(ctx, c.ID))
		// The totals were kept through the crash and the resend.
		b.countersMatch(c.ID)
		if st.Delivered != int64(total) || st.Unknown != 0 || st.Resent != campaigns.ClaimSlice {
			t.Fatalf("stats %+v, want all delivered and one slice resent", st)
		}
		twice := 0
		for _, m := range ms {
			if b.once(c, m) == 2 {
				twice++
			}
		}
		// The crashed slice reached the provider and was resent: those
		// devices hold two copies under one collapse key, so they show one.
		if twice == 0 || twice > campaigns.ClaimSlice {
			t.Fatalf("%d devices received two copies", twice)
		}
	})

	t.Run("DrainFinishesTheSliceAndHandsBackTheRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		total := 2*campaigns.ClaimSlice + 3
		ms := b.seedDevices(total)
		b.sim.SetFault("fcm", ms[0].device.Token, simulator.Fault{Delay: time.Second, Times: 1})
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, ms[0].device.ID-1, ms[total-1].device.ID)
		draining, _ := newServices(b.pool, b.store, b.sim)
		done := make(chan error, 1)
		go func() { done <- (&campaigns.BatchWorker{Service: draining}).Work(ctx, batchJob(c.ID, 0, 1)) }()
		b.waitFor(10*time.Second, func() bool { return b.total(ms) > 0 }, func() string { return "nothing was sent" })
		draining.Drain() // SIGTERM, while the first slice waits for its slow device
		if err := <-done; !isSnooze(err) {
			t.Fatalf("a draining batch returned %v, want a snooze that gives the job back", err)
		}
		if rows := b.deliveryRows(c.ID); rows["delivered"] != campaigns.ClaimSlice || len(rows) != 1 {
			t.Fatalf("after the drain: %v, want the slice in flight finished and recorded, nothing else claimed", rows)
		}
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 1)); err != nil {
			t.Fatal(err)
		}
		st := must(b.svc.Stats(ctx, c.ID))
		if st.Status != campaigns.StatusFinished || st.Delivered != int64(total) || st.Resent != 0 {
			t.Fatalf("stats %+v", st)
		}
		for _, m := range ms {
			if n := len(b.received(m)); n != 1 {
				t.Fatalf("received %d", n)
			}
		}
	})

	t.Run("CutOffMidSliceRecordsUnknownAndReleasesWhatNeverLeft", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ms := b.seedDevices(6)
		// 120 a minute: one message every half second, so a cut after
		// 1.2 s leaves the slice's later messages unsent, and the slow
		// first device's request written but unanswered.
		b.sim.SetFault("fcm", ms[0].device.Token, simulator.Fault{Delay: 3 * time.Second, Times: 1})
		throttle := 120
		c := b.running(campaigns.Params{ThrottlePerMinute: &throttle}, delivery.PlatformFCM, ms[0].device.ID-1, ms[5].device.ID)
		// The grace period runs out: River cancels the job's context.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(1200*time.Millisecond, cancel)
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("a cut-off run returned %v", err)
		}
		// The slow device's request was written and unanswered: unknown (so
		// may be one more whose answer was on its way at the cut).
		rows := b.deliveryRows(c.ID)
		if rows["unknown"] < 1 || rows["delivered"] < 1 || rows["claimed"] != 0 || rows["failed"] != 0 ||
			rows["unknown"]+rows["delivered"] >= 6 {
			t.Fatalf("after the cut: %v, want the written requests unknown, the sent ones delivered, the rest released", rows)
		}
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(context.Background(), batchJob(c.ID, 0, 2)); err != nil {
			t.Fatal(err)
		}
		st := must(b.svc.Stats(context.Background(), c.ID))
		if st.Status != campaigns.StatusFinished || st.Delivered != 6 || st.Failed != 0 || st.Resent != int64(rows["unknown"]) {
			t.Fatalf("stats %+v, want the %d unknown resent", st, rows["unknown"])
		}
		twice := 0
		for _, m := range ms {
			if b.once(c, m) > 1 {
				twice++
			}
		}
		if twice > rows["unknown"] {
			t.Fatalf("%d devices hold two copies, only %d were unknown", twice, rows["unknown"])
		}
	})

	t.Run("AFailureBeforeSendingReleasesTheSlice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		ms := b.seedDevices(4)
		throttle := 600
		c := b.running(campaigns.Params{ThrottlePerMinute: &throttle}, delivery.PlatformFCM, ms[0].device.ID-1, ms[3].device.ID)
		// The slice is claimed, then booking the throttle fails: nothing
		// was sent, so nothing may be reported as perhaps sent.
		b.faults.add(c.ID, "SET throttle_next_at = greatest", "cancel", 1)
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 1)); err == nil || isSnooze(err) {
			t.Fatalf("Work returned %v", err)
		}
		if rows := b.deliveryRows(c.ID); len(rows) != 0 {
			t.Fatalf("after the failure: %v, want the claims released", rows)
		}
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 2)); err != nil {
			t.Fatal(err)
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Delivered != 4 || st.Resent != 0 || st.Unknown != 0 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("AFailedBatchReadIsAnError", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.faults.add(c.ID, "FROM campaign_batches b", "cancel", 1)
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(context.Background(), batchJob(c.ID, 0, 1)); err == nil || isSnooze(err) {
			t.Fatalf("Work returned %v when it could not read its batch", err)
		}
		if b.count(`SELECT count(*) FROM campaign_batches WHERE campaign_id = $1 AND state = 'pending'`, c.ID) != 1 {
			t.Fatal("the batch is no longer pending")
		}
	})

	t.Run("AFailedListLookupIsAnErrorNotASmallerAudience", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.faults.add(b.list, "FROM lists", "cancel", 1)
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(context.Background(), batchJob(c.ID, 0, 1)); err == nil {
			t.Fatal("Work succeeded when it could not look up the campaign's list")
		}
		if st := must(b.svc.Stats(context.Background(), c.ID)); st.Status != campaigns.StatusRunning || st.Batches["pending"] != 1 {
			t.Fatalf("stats %+v: the batch ended as if its list were empty", st)
		}
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(context.Background(), batchJob(c.ID, 0, 2)); err != nil {
			t.Fatal(err)
		}
		if n := len(b.received(m)); n != 1 {
			t.Fatalf("received %d", n)
		}
	})

	t.Run("AFailedFinishIsAnErrorAndTheReconcilerFinishes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.faults.add(c.ID, "SET status = 'finished'", "cancel", 1)
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 1)); err == nil {
			t.Fatal("Work succeeded when it could not finish the campaign")
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Status != campaigns.StatusRunning || st.Batches["done"] != 1 {
			t.Fatalf("stats %+v", st)
		}
		mends := must(b.svc.Reconcile(ctx, c.ID))
		if len(mends) != 1 || mends[0].Kind != "finished" {
			t.Fatalf("mends %+v", mends)
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Status != campaigns.StatusFinished || st.Mended != 1 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("LongProviderReasonsAreCutAtACharacter", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		bad := b.addMember(delivery.PlatformWebPush, "en", "", "")
		good := b.addMember(delivery.PlatformWebPush, "en", "", "")
		// "400 x" and then two-byte characters: a cut at 500 bytes falls
		// in the middle of one.
		b.sim.SetFault("webpush", bad.device.Token, simulator.Fault{Status: 400, Reason: "x" + strings.Repeat("é", 300)})
		c := b.running(campaigns.Params{}, delivery.PlatformWebPush, bad.device.ID-1, good.device.ID)
		if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 1)); err != nil {
			t.Fatal(err)
		}
		st := must(b.svc.Stats(ctx, c.ID))
		if st.Delivered != 1 || st.FailedByReason["rejected"] != 1 || st.Unknown != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestDatabaseFaults breaks the database under running campaigns: a
// connection terminated mid-batch, a statement timeout, a failed read of
// the stats. Each campaign still ends with every device accounted for.
func TestDatabaseFaults(t *testing.T) {
	t.Parallel()

	t.Run("ConnectionTerminatedWhileRecording", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for i := range 21 {
			ms = append(ms, b.addMember([]delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush}[i%3], "en", "", ""))
		}
		c := b.create(campaigns.Params{})
		// The first slice is sent, then its backend dies as it records.
		hit := b.faults.add(c.ID, "DELETE FROM campaign_slices WHERE id = $2", "terminate", 1)
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		<-hit
		st := b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
		if st.Delivered != 21 || st.Unknown != 0 || st.Failed != 0 || st.Resent == 0 {
			t.Fatalf("stats %+v: want all delivered, the lost slice resent", st)
		}
		for _, m := range ms {
			b.once(c, m)
		}
	})

	t.Run("StatementTimeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 4 {
			ms = append(ms, b.addMember(delivery.PlatformFCM, "en", "", ""))
		}
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, ms[0].device.ID-1, ms[3].device.ID)
		cfg := b.pool.Config()
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = "300ms"
		timeouts := must(pgxpool.NewWithConfig(ctx, cfg))
		t.Cleanup(timeouts.Close)
		svc, _ := newServices(timeouts, b.store, b.sim)
		// Someone holds the batch row: closing the batch waits past the
		// statement timeout.
		lock := must(b.pool.Begin(ctx))
		if _, err := lock.Exec(ctx, `SELECT 1 FROM campaign_batches WHERE campaign_id = $1 FOR UPDATE`, c.ID); err != nil {
			t.Fatal(err)
		}
		err := (&campaigns.BatchWorker{Service: svc}).Work(ctx, batchJob(c.ID, 0, 1))
		if err == nil || !strings.Contains(err.Error(), "statement timeout") {
			t.Fatalf("Work returned %v, want the statement timeout", err)
		}
		if err := lock.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if err := (&campaigns.BatchWorker{Service: svc}).Work(ctx, batchJob(c.ID, 0, 2)); err != nil {
			t.Fatal(err)
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Status != campaigns.StatusFinished || st.Delivered != 4 || st.Resent != 0 {
			t.Fatalf("stats %+v", st)
		}
		for _, m := range ms {
			if n := len(b.received(m)); n != 1 {
				t.Fatalf("received %d", n)
			}
		}
	})

	t.Run("AFailedStatsReadIsAnErrorNotNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.create(campaigns.Params{})
		b.faults.add(c.ID, "FROM campaigns WHERE id = $1", "cancel", 1)
		_, err := b.svc.Stats(context.Background(), c.ID)
		if err == nil || errors.Is(err, campaigns.ErrNotFound) {
			t.Fatalf("Stats returned %v", err)
		}
	})
}
