package campaigns_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

func TestDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var ms []member
	for range 6 {
		ms = append(ms, b.addMember(delivery.PlatformWebPush, "en", "", ""))
	}
	b.sim.SetFault("webpush", ms[1].device.Token, simulator.Fault{Status: 410, Reason: "gone"})
	b.sim.SetFault("webpush", ms[3].device.Token, simulator.Fault{Status: 400, Reason: "bad"})
	b.sim.SetFault("webpush", ms[4].device.Token, simulator.Fault{Status: 410, Reason: "gone"})
	c := b.create(campaigns.Params{})
	must(b.svc.ScheduleCampaign(ctx, audit.System("test"), c.ID))
	b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)

	t.Run("ByStatusAndReason", func(t *testing.T) {
		t.Parallel()
		failed := must(b.svc.Deliveries(ctx, c.ID, campaigns.DeliveryFilter{Status: "failed"}))
		if len(failed) != 3 || failed[0].DeviceID != ms[1].device.ID || *failed[1].Outcome != "rejected" {
			t.Fatalf("failed %+v", failed)
		}
		gone := must(b.svc.Deliveries(ctx, c.ID, campaigns.DeliveryFilter{Status: "failed", Reason: "device_gone"}))
		if len(gone) != 2 || gone[1].DeviceID != ms[4].device.ID || gone[0].Reason == nil {
			t.Fatalf("gone %+v", gone)
		}
	})

	t.Run("KeysetPages", func(t *testing.T) {
		t.Parallel()
		var seen []int64
		page := subscribers.Page{Limit: 4}
		for {
			got := must(b.svc.Deliveries(ctx, c.ID, campaigns.DeliveryFilter{Page: page}))
			for _, d := range got {
				seen = append(seen, d.DeviceID)
			}
			if len(got) < page.Limit {
				break
			}
			page.After = got[len(got)-1].DeviceID
		}
		if len(seen) != 6 || seen[0] != ms[0].device.ID || seen[5] != ms[5].device.ID {
			t.Fatalf("pages %v", seen)
		}
	})

	t.Run("RejectsUnknownFilters", func(t *testing.T) {
		t.Parallel()
		for _, f := range []campaigns.DeliveryFilter{{Status: "sent'; DROP TABLE deliveries; --"}, {Reason: "nope"}} {
			if _, err := b.svc.Deliveries(ctx, c.ID, f); err == nil {
				t.Fatalf("%+v accepted", f)
			} else if _, ok := invalid.As(err); !ok {
				t.Fatalf("%+v: %v is not a field error", f, err)
			}
		}
		if _, err := b.svc.Deliveries(ctx, 1<<40, campaigns.DeliveryFilter{}); err != campaigns.ErrNotFound {
			t.Fatalf("unknown campaign: %v", err)
		}
	})
}
