package campaigns_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
)

func mendKinds(ms []campaigns.Mend) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Kind+" "+m.What)
	}
	slices.Sort(out)
	return out
}

// TestReconcile arranges states that no job will mend (their jobs ended)
// and checks the reconciler mends each, once.
func TestReconcile(t *testing.T) {
	t.Parallel()

	t.Run("RequeuesABatchWhoseJobEndedAndTheCampaignFinishes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		mends := must(b.svc.Reconcile(ctx, c.ID))
		if got := mendKinds(mends); !slices.Equal(got, []string{"requeued batch 0"}) {
			t.Fatalf("mends %v", got)
		}
		b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
		if n := len(b.received(m)); n != 1 {
			t.Fatalf("received %d", n)
		}
		// Nothing left to mend, and the stats say what was mended.
		if again := must(b.svc.Reconcile(ctx, c.ID)); len(again) != 0 {
			t.Fatalf("second run mended %v", mendKinds(again))
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Mended != 1 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("LeavesWorkWithALiveJobAlone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		b.addMember(delivery.PlatformFCM, "en", "", "")
		at := time.Now().Add(time.Hour)
		c := b.create(campaigns.Params{Schedule: &campaigns.Schedule{Mode: "at", At: &at}})
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		if mends := must(b.svc.Reconcile(ctx, c.ID)); len(mends) != 0 {
			t.Fatalf("mended a campaign whose start job waits: %v", mendKinds(mends))
		}
		must(b.svc.Cancel(ctx, audit.System("test"), c.ID))
	})

	t.Run("ClosesOpenWorkOfEndedCampaignsAndParksThatOfPausedOnes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		ended := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.exec(`UPDATE campaigns SET status = 'cancelled' WHERE id = $1`, ended.ID)
		paused := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.exec(`UPDATE campaigns SET status = 'paused' WHERE id = $1`, paused.ID)
		mends := must(b.svc.Reconcile(ctx, ended.ID, paused.ID))
		if got := mendKinds(mends); !slices.Equal(got, []string{"closed batch 0", "parked batch 0"}) {
			t.Fatalf("mends %v", got)
		}
		// The parked batch runs after a resume.
		must(b.svc.Resume(ctx, audit.System("test"), paused.ID))
		b.waitStatus(paused.ID, campaigns.StatusFinished, 20*time.Second)
		if n := len(b.received(m)); n != 1 {
			t.Fatalf("received %d", n)
		}
	})

	t.Run("QueuesParkedWorkOfARunningCampaign", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		// What a park that raced a resume would leave: running, yet parked.
		b.exec(`UPDATE campaign_batches SET state = 'parked' WHERE campaign_id = $1`, c.ID)
		if got := mendKinds(must(b.svc.Reconcile(ctx, c.ID))); !slices.Equal(got, []string{"requeued batch 0"}) {
			t.Fatalf("mends %v", got)
		}
		b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
		if n := len(b.received(m)); n != 1 {
			t.Fatalf("received %d", n)
		}
	})

	t.Run("ResumeFinishesACampaignWhoseLastBatchEndedWhilePaused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.exec(`UPDATE campaign_batches SET state = 'done' WHERE campaign_id = $1`, c.ID)
		b.exec(`UPDATE campaigns SET status = 'paused' WHERE id = $1`, c.ID)
		if got := must(b.svc.Resume(ctx, audit.System("test"), c.ID)); got.Status != campaigns.StatusFinished {
			t.Fatalf("after resume: %s, want finished (nothing was left to send)", got.Status)
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Mended != 0 {
			t.Fatalf("the reconciler had to finish it: %+v", st)
		}
	})

	t.Run("FinishesACampaignWithNothingLeft", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.exec(`UPDATE campaign_batches SET state = 'done' WHERE campaign_id = $1`, c.ID)
		if got := mendKinds(must(b.svc.Reconcile(ctx, c.ID))); !slices.Equal(got, []string{"finished campaign"}) {
			t.Fatalf("mends %v", got)
		}
		if st := must(b.svc.Stats(ctx, c.ID)); st.Status != campaigns.StatusFinished {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("FailsACampaignWhoseBatchKeepsEnding", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		m := b.addMember(delivery.PlatformFCM, "en", "", "")
		c := b.running(campaigns.Params{}, delivery.PlatformFCM, m.device.ID-1, m.device.ID)
		b.exec(`UPDATE campaign_batches SET requeues = 5 WHERE campaign_id = $1`, c.ID)
		if got := mendKinds(must(b.svc.Reconcile(ctx, c.ID))); !slices.Equal(got, []string{"failed batch 0"}) {
			t.Fatalf("mends %v", got)
		}
		got := must(b.svc.Get(ctx, c.ID))
		if got.Status != campaigns.StatusFailed || got.FailureReason == nil {
			t.Fatalf("campaign %+v", got)
		}
		if got := mendKinds(must(b.svc.Reconcile(ctx, c.ID))); !slices.Equal(got, []string{"closed batch 0"}) {
			t.Fatalf("second run: mends %v", got)
		}
	})
}
