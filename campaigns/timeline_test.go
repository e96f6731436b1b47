package campaigns_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
)

func TestTimeline(t *testing.T) {
	t.Parallel()

	t.Run("CountsOutcomesAsTheyAreWritten", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		for i := range 12 {
			b.addMember([]delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush}[i%3], "en", "", "")
		}
		c := b.create(campaigns.Params{})
		empty := must(b.svc.Timeline(ctx, c.ID))
		if len(empty.Points) != 0 || empty.BucketSeconds != 10 {
			t.Fatalf("a draft's timeline: %+v", empty)
		}
		before := time.Now().Add(-campaigns.TimelineBucket)
		must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
		st := b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
		tl := must(b.svc.Timeline(ctx, c.ID))
		var delivered, failed, unknown int64
		for _, p := range tl.Points {
			if p.At.Before(before) || p.At.After(time.Now()) {
				t.Fatalf("point at %s, outside the send", p.At)
			}
			delivered, failed, unknown = delivered+p.Delivered, failed+p.Failed, unknown+p.Unknown
		}
		if len(tl.Points) == 0 || delivered != st.Delivered || failed != st.Failed || unknown != st.Unknown || delivered != 12 {
			t.Fatalf("timeline %+v, stats %+v", tl, st)
		}
	})

	t.Run("UnknownCampaign", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.svc.Timeline(context.Background(), 1<<60); err == nil {
			t.Fatal("a timeline for no campaign")
		}
	})
}
