package campaigns_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

// TestRetryFailed checks what a retry round sends again, and that it
// honours pause and cancel.
func TestRetryFailed(t *testing.T) {
	t.Parallel()

	t.Run("NeverResendsUnknownUnlessAsked", func(t *testing.T) {
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
		if n := must(b.svc.RetryFailed(ctx, audit.System("test"), c.ID, campaigns.RetryOptions{})); n != 0 {
			t.Fatalf("retry-failed would send %d; the unknown device may have the message", n)
		}
		if n := must(b.svc.RetryFailed(ctx, audit.System("test"), c.ID, campaigns.RetryOptions{IncludeUnknown: true})); n != 1 {
			t.Fatalf("retry-failed with unknown queued %d, want 1", n)
		}
		b.waitFor(20*time.Second, func() bool { return must(b.svc.Stats(ctx, c.ID)).Delivered == 3 },
			func() string { return fmt.Sprintf("%+v", must(b.svc.Stats(ctx, c.ID))) })
		if st := must(b.svc.Stats(ctx, c.ID)); st.Resent != 1 || st.Unknown != 0 {
			t.Fatalf("stats %+v", st)
		}
		// The totals followed the rows through the retry round.
		b.countersMatch(c.ID)
		for _, m := range ms {
			if n := b.once(c, m); n != 1 {
				t.Fatalf("received %d", n)
			}
		}
	})

	t.Run("ARoundParksOnPauseAndEndsOnCancel", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		var ms []member
		for range 40 {
			m := b.addMember(delivery.PlatformWebPush, "en", "", "")
			b.sim.SetFault("webpush", m.device.Token, simulator.Fault{Status: 500, Reason: "down", Times: 1})
			ms = append(ms, m)
		}
		// 60 a minute: a round of 40 takes 40 s, so pause and cancel find
		// it mid-way.
		throttle := 60
		c := b.create(campaigns.Params{ThrottlePerMinute: &throttle})
		b.exec(`UPDATE campaigns SET throttle_per_minute = NULL WHERE id = $1`, c.ID)
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		st := b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
		if st.FailedByReason["retryable"] != 40 {
			t.Fatalf("stats %+v", st)
		}
		b.exec(`UPDATE campaigns SET throttle_per_minute = 60, status = 'running' WHERE id = $1`, c.ID)
		must(b.svc.RetryFailed(ctx, audit.System("test"), c.ID, campaigns.RetryOptions{}))
		b.waitFor(10*time.Second, func() bool { return b.total(ms) > 0 }, func() string { return "the round sent nothing: " + b.jobErrors(c.ID) })
		must(b.svc.Pause(ctx, audit.System("test"), c.ID))
		b.waitFor(10*time.Second, func() bool { return must(b.svc.Stats(ctx, c.ID)).RetryRounds["parked"] == 1 && b.liveJobs(c.ID) == 0 },
			func() string { return fmt.Sprintf("%+v, live jobs %d", must(b.svc.Stats(ctx, c.ID)), b.liveJobs(c.ID)) })
		must(b.svc.Resume(ctx, audit.System("test"), c.ID))
		b.waitFor(10*time.Second, func() bool { return must(b.svc.Stats(ctx, c.ID)).RetryRounds["pending"] == 1 },
			func() string { return "the round did not wake" })
		must(b.svc.Cancel(ctx, audit.System("test"), c.ID))
		b.waitFor(10*time.Second, func() bool { return b.liveJobs(c.ID) == 0 }, func() string { return "the round still runs" })
		st = must(b.svc.Stats(ctx, c.ID))
		if st.RetryRounds["cancelled"] != 1 || st.InFlight != 0 || st.Delivered >= 40 {
			t.Fatalf("stats %+v", st)
		}
		for _, m := range ms {
			if n := len(b.received(m)); n > 1 {
				t.Fatalf("received %d", n)
			}
		}
	})
}

func (b *testBundle) jobErrors(campaignID int64) string {
	return fmt.Sprint(b.rows(`SELECT kind, state, attempt, errors FROM river_job WHERE (args->>'campaign_id')::bigint = $1`, campaignID))
}
