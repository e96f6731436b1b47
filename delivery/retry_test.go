package delivery_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

func TestSendWithRetriesOnlyWhatFailed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	flaky := delivery.Device{ID: 1, Platform: delivery.PlatformFCM, Token: b.sim.NewFCMToken()}
	steady := delivery.Device{ID: 2, Platform: delivery.PlatformFCM, Token: b.sim.NewFCMToken()}
	throttled := b.webPushDevice(3)
	b.sim.SetFault("fcm", flaky.Token, simulator.Fault{Status: 500, Reason: "INTERNAL", Times: 2})
	b.sim.SetFault("webpush", throttled.Token, simulator.Fault{Status: 429, Reason: "slow", RetryAfter: time.Second, Times: 1})
	start := time.Now()
	out := b.sender.SendWith(context.Background(), testMessage, []delivery.Device{flaky, steady, throttled}, delivery.SendOptions{
		MaxAttempts: 3, Backoff: func(int) time.Duration { return 10 * time.Millisecond },
	})
	for _, o := range out {
		if o.Class != delivery.ClassDelivered {
			t.Fatalf("outcome %+v", o)
		}
	}
	if time.Since(start) < time.Second {
		t.Error("Retry-After of 1s was not honoured")
	}
	for _, d := range []delivery.Device{flaky, steady} {
		if n := len(b.sim.Received("fcm", d.Token)); n != 1 {
			t.Errorf("device %d received %d times, want once", d.ID, n)
		}
	}
	// Bounded: a device that keeps failing ends retryable after MaxAttempts.
	dead := delivery.Device{ID: 4, Platform: delivery.PlatformFCM, Token: b.sim.NewFCMToken()}
	b.sim.SetFault("fcm", dead.Token, simulator.Fault{Status: 500, Reason: "INTERNAL"})
	o := b.sender.SendWith(context.Background(), testMessage, []delivery.Device{dead},
		delivery.SendOptions{MaxAttempts: 3, Backoff: func(int) time.Duration { return time.Millisecond }})[0]
	if o.Class != delivery.ClassRetryable {
		t.Fatalf("outcome %+v", o)
	}
}

func TestSendRespectsProviderAndStreamRates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sender, err := delivery.NewSender(context.Background(), b.creds, delivery.Options{
		RootCAs: b.sim.CertPool(), Concurrency: 32, Rates: map[delivery.Platform]float64{delivery.PlatformAPNs: 400},
	})
	if err != nil {
		t.Fatal(err)
	}
	devices := make([]delivery.Device, 240)
	for i := range devices {
		devices[i] = delivery.Device{ID: int64(i), Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(false)}
	}
	start := time.Now()
	sender.Send(context.Background(), testMessage, devices)
	// 240 at 400/s with a burst of 40: at least (240-40)/400 = 0.5 s.
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Errorf("provider rate not applied: 240 sends in %v", d)
	}
	start = time.Now()
	sender.SendWith(context.Background(), testMessage, devices[:60], delivery.SendOptions{Limiter: rate.NewLimiter(100, 10)})
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Errorf("stream rate not applied: 60 sends in %v", d)
	}
}

func TestRandomFaultsAreClassified(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sim.SetRandomFault("apns", 0.5, simulator.Fault{Status: 503, Reason: "ServiceUnavailable"})
	devices := make([]delivery.Device, 200)
	for i := range devices {
		devices[i] = delivery.Device{ID: int64(i), Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(false)}
	}
	counts := map[delivery.Class]int{}
	for _, o := range b.sender.Send(context.Background(), testMessage, devices) {
		counts[o.Class]++
	}
	if counts[delivery.ClassDelivered]+counts[delivery.ClassRetryable] != 200 || counts[delivery.ClassRetryable] < 50 || counts[delivery.ClassDelivered] < 50 {
		t.Fatalf("outcomes %v", counts)
	}
	b.sim.SetRandomFault("apns", 0, simulator.Fault{})
}
