package delivery_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

// These tests check what a sender reports when no answer comes: the request
// reached the provider whole (unknown), never left (not sent) or never
// reached it (retryable). Each runs against the simulator through the real
// client libraries, once per target.

// target is one way of reaching a provider.
type target struct {
	name     string
	platform delivery.Platform
	// http1 sends Web Push over HTTP/1.1 rather than HTTP/2, whose transport
	// reports a request's progress differently.
	http1 bool
}

var targets = []target{
	{"apns", delivery.PlatformAPNs, false},
	{"fcm", delivery.PlatformFCM, false},
	{"webpush", delivery.PlatformWebPush, false},
	{"webpush_http1", delivery.PlatformWebPush, true},
}

// setupTarget is setup for one target.
func setupTarget(t *testing.T, tg target, mods ...func(*delivery.Credentials, *delivery.Options)) *testBundle {
	t.Helper()
	b := setup(t, mods...)
	if tg.http1 {
		delivery.UseHTTP1ForWebPush(b.sender, b.sim.CertPool())
	}
	return b
}

// pointAt sends APNs and FCM to addr instead of the simulator; Web Push
// devices name their endpoint themselves (see unreachableDevice).
func pointAt(addr string) func(*delivery.Credentials, *delivery.Options) {
	return func(c *delivery.Credentials, _ *delivery.Options) {
		c.APNs.Endpoint = "https://" + addr
		c.FCM.Endpoint = "https://" + addr
	}
}

// device mints a device on platform p that the simulator knows.
func (b *testBundle) device(p delivery.Platform, id int64) delivery.Device {
	switch p {
	case delivery.PlatformAPNs:
		return delivery.Device{ID: id, Platform: p, Token: b.sim.NewAPNsToken(false)}
	case delivery.PlatformFCM:
		return delivery.Device{ID: id, Platform: p, Token: b.sim.NewFCMToken()}
	default:
		return b.webPushDevice(id)
	}
}

// unreachableDevice is a device whose provider listens at addr.
func (b *testBundle) unreachableDevice(p delivery.Platform, addr string) delivery.Device {
	d := b.device(p, 1)
	if p == delivery.PlatformWebPush {
		d.Token = "https://" + addr + "/wp/elsewhere"
	}
	return d
}

func (b *testBundle) setFault(d delivery.Device, f simulator.Fault) {
	b.sim.SetFault(string(d.Platform), d.Token, f)
}

func (b *testBundle) received(d delivery.Device) int {
	return len(b.sim.Received(string(d.Platform), d.Token))
}

// waitReceived waits until the simulator has recorded n messages to d, which
// it does once it has read a request whole.
func (b *testBundle) waitReceived(t *testing.T, d delivery.Device, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.sim.WaitReceived(ctx, string(d.Platform), d.Token, n); err != nil {
		t.Fatal(err)
	}
}

// sendAsync sends testMessage to devices in the background.
func (b *testBundle) sendAsync(ctx context.Context, devices ...delivery.Device) <-chan []delivery.Outcome {
	out := make(chan []delivery.Outcome, 1)
	go func() { out <- b.sender.Send(ctx, testMessage, devices) }()
	return out
}

func wantClass(t *testing.T, o delivery.Outcome, class delivery.Class, reasonPrefix string) {
	t.Helper()
	if o.Class != class || !strings.HasPrefix(o.Reason, reasonPrefix) {
		t.Fatalf("outcome %+v, want %s with a reason starting %q", o, class, reasonPrefix)
	}
}

// silentListener accepts TCP connections and never answers, so that clients
// hang in the TLS handshake; accepted receives when a connection comes.
func silentListener(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), ch
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestSenderUnknownWhenCallerCancelsAfterWrite: the provider has read the
// whole request and holds its answer when the caller cancels. It may have
// accepted the message, so the outcome is unknown, not retryable.
func TestSenderUnknownWhenCallerCancelsAfterWrite(t *testing.T) {
	t.Parallel()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			b := setupTarget(t, tg)
			d := b.device(tg.platform, 1)
			b.setFault(d, simulator.Fault{Hang: true})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := b.sendAsync(ctx, d)
			b.waitReceived(t, d, 1)
			cancel()
			wantClass(t, (<-out)[0], delivery.ClassUnknown, "no answer after the request was sent: canceled")
			if n := b.received(d); n != 1 {
				t.Fatalf("received %d times", n)
			}
		})
	}
}

// TestSenderUnknownWhenConnectionCutAfterRead: the provider reads the whole
// request and then cuts the connection (or resets the stream) unanswered.
func TestSenderUnknownWhenConnectionCutAfterRead(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name  string
		fault simulator.Fault
	}{
		{"cut", simulator.Fault{Cut: true}},    // recorded, then the TCP connection is closed
		{"reset", simulator.Fault{Drop: true}}, // not recorded; HTTP/2 resets the stream
	}
	for _, tg := range targets {
		for _, f := range faults {
			t.Run(tg.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				b := setupTarget(t, tg)
				d := b.device(tg.platform, 1)
				b.setFault(d, f.fault)
				o := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
				wantClass(t, o, delivery.ClassUnknown, "no answer after the request was sent: ")
				if strings.Contains(o.Reason, d.Token) {
					t.Fatalf("reason %q holds the device token", o.Reason)
				}
				// Nothing resends it, the FCM SDK's own retry included.
				if n := b.sim.Requests(); n != 1 {
					t.Fatalf("the simulator got %d request(s)", n)
				}
				if n := b.received(d); f.fault.Cut && n != 1 {
					t.Fatalf("received %d times", n)
				}
			})
		}
	}
}

// TestSenderNotSentWhenContextEndsFirst: the caller's context ends before a
// request is written, at any of the points where a send can wait. The
// provider cannot have it, and no request reaches the simulator.
func TestSenderNotSentWhenContextEndsFirst(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, tg target)
	}{
		{"already_cancelled", func(t *testing.T, tg target) {
			b := setupTarget(t, tg)
			d := b.device(tg.platform, 1)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			wantClass(t, b.sender.Send(ctx, testMessage, []delivery.Device{d})[0], delivery.ClassNotSent, "not sent: canceled")
			o := b.sender.SendWith(ctx, testMessage, []delivery.Device{d}, delivery.SendOptions{MaxAttempts: 3})[0]
			wantClass(t, o, delivery.ClassNotSent, "not sent: canceled")
			if n := b.sim.Requests(); n != 0 {
				t.Fatalf("the simulator got %d request(s)", n)
			}
		}},
		{"waiting_for_rate_limit", func(t *testing.T, tg target) {
			// One message now, the next in 100 s.
			b := setupTarget(t, tg, func(_ *delivery.Credentials, o *delivery.Options) {
				o.Rates = map[delivery.Platform]float64{tg.platform: 0.01}
			})
			first, second := b.device(tg.platform, 1), b.device(tg.platform, 2)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := b.sendAsync(ctx, first, second)
			b.waitReceived(t, first, 1)
			cancel()
			wantClass(t, (<-out)[1], delivery.ClassNotSent, "not sent: canceled")
			if n := b.sim.Requests(); n != 1 || b.received(second) != 0 {
				t.Fatalf("the simulator got %d request(s)", n)
			}
		}},
		{"waiting_for_inflight_slot", func(t *testing.T, tg target) {
			b := setupTarget(t, tg, func(_ *delivery.Credentials, o *delivery.Options) { o.Concurrency = 1 })
			first, second := b.device(tg.platform, 1), b.device(tg.platform, 2)
			b.setFault(first, simulator.Fault{Hang: true})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := b.sendAsync(ctx, first, second)
			b.waitReceived(t, first, 1)
			cancel()
			got := <-out
			wantClass(t, got[0], delivery.ClassUnknown, "no answer after the request was sent: canceled")
			wantClass(t, got[1], delivery.ClassNotSent, "not sent: canceled")
			if n := b.sim.Requests(); n != 1 || b.received(second) != 0 {
				t.Fatalf("the simulator got %d request(s)", n)
			}
		}},
		{"while_connecting", func(t *testing.T, tg target) {
			addr, accepted := silentListener(t)
			b := setupTarget(t, tg, pointAt(addr))
			d := b.unreachableDevice(tg.platform, addr)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := b.sendAsync(ctx, d)
			select {
			case <-accepted:
			case <-time.After(30 * time.Second):
				t.Fatal("the sender never connected")
			}
			cancel()
			wantClass(t, (<-out)[0], delivery.ClassNotSent, "not sent: canceled")
		}},
	}
	for _, tg := range targets {
		for _, c := range cases {
			t.Run(tg.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t, tg)
			})
		}
	}
}

// TestSenderRetryableWhenProviderUnreachable: nothing listens at the
// provider's address, so nothing was sent, and the caller's context is fine:
// the send may be retried.
func TestSenderRetryableWhenProviderUnreachable(t *testing.T) {
	t.Parallel()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			addr := closedPort(t)
			b := setupTarget(t, tg, pointAt(addr))
			d := b.unreachableDevice(tg.platform, addr)
			// FCM takes 7 s: its SDK retries connection errors with backoff.
			o := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
			wantClass(t, o, delivery.ClassRetryable, "")
			if !strings.Contains(o.Reason, "connection refused") || strings.Contains(o.Reason, d.Token) {
				t.Fatalf("reason %q", o.Reason)
			}
		})
	}
}

// TestSenderRetryableOnServerError: a 500 is an answer that the provider did
// not take the message; it stays retryable.
func TestSenderRetryableOnServerError(t *testing.T) {
	t.Parallel()
	reasons := map[delivery.Platform]string{
		delivery.PlatformAPNs: "InternalServerError", delivery.PlatformFCM: "INTERNAL", delivery.PlatformWebPush: "try later",
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			b := setupTarget(t, tg)
			d := b.device(tg.platform, 1)
			b.setFault(d, simulator.Fault{Status: 500, Reason: reasons[tg.platform]})
			o := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
			wantClass(t, o, delivery.ClassRetryable, "")
			if o.Reason == "" || b.received(d) != 0 {
				t.Fatalf("outcome %+v", o)
			}
		})
	}
}

// TestSenderSendWithNeverResendsUnknown: a request the provider read and
// never answered times out as unknown, and SendWith does not send it again
// though attempts remain.
func TestSenderSendWithNeverResendsUnknown(t *testing.T) {
	t.Parallel()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			b := setupTarget(t, tg)
			delivery.SetRequestTimeout(b.sender, time.Second)
			// Connect first, so that the timeout falls after the write.
			warm := b.device(tg.platform, 1)
			if o := b.sender.Send(context.Background(), testMessage, []delivery.Device{warm})[0]; o.Class != delivery.ClassDelivered {
				t.Fatalf("warm-up outcome %+v", o)
			}
			d := b.device(tg.platform, 2)
			b.setFault(d, simulator.Fault{Hang: true})
			o := b.sender.SendWith(context.Background(), testMessage, []delivery.Device{d},
				delivery.SendOptions{MaxAttempts: 3, Backoff: func(int) time.Duration { return time.Millisecond }})[0]
			wantClass(t, o, delivery.ClassUnknown, "no answer after the request was sent: timeout")
			if n := b.received(d); n != 1 {
				t.Fatalf("received %d times, want once", n)
			}
		})
	}
}
