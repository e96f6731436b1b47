package delivery_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/herald-im/herald/delivery"
)

// TestEndpointPolicy: a Web Push endpoint is a URL a subscriber chooses;
// Herald connects only to the push services, never into a private network.
func TestEndpointPolicy(t *testing.T) {
	t.Parallel()

	t.Run("CheckURL", func(t *testing.T) {
		t.Parallel()
		def := &delivery.EndpointPolicy{}
		any := &delivery.EndpointPolicy{Hosts: []string{"*"}}
		for _, tt := range []struct {
			policy   *delivery.EndpointPolicy
			endpoint string
			ok       bool
		}{
			{def, "https://fcm.googleapis.com/fcm/send/abc", true},
			{def, "https://updates.push.services.mozilla.com/wpush/v2/abc", true},
			{def, "https://web.push.apple.com/QGuQ", true},
			{def, "https://wns2-db5p.notify.windows.com/w/?token=abc", true},
			{def, "https://FCM.googleapis.com./fcm/send/abc", true},
			{def, "https://evil.example.com/push", false},
			{def, "https://fcm.googleapis.com.evil.example.com/push", false},
			{def, "https://xfcm.googleapis.com/push", false},
			{def, "https://localhost:8080/push", false},
			{def, "https://127.0.0.1:5432/", false},
			{def, "https://[::ffff:127.0.0.1]:8080/", false},
			{def, "https://10.1.2.3/push", false},
			{def, "https://169.254.169.254/latest/meta-data/", false},
			{def, "https://[fd00::1]/push", false},
			{any, "https://push.example.com/x", true},
			{any, "https://8.8.8.8/x", true},
			{any, "https://127.0.0.1/x", false},
			{any, "https://[::ffff:10.0.0.1]/x", false},
			{any, "https://[fe80::1]/x", false},
			{any, "https://100.64.0.1/x", false},
			{any, "https://0.0.0.0/x", false},
			{any, "https://[::7f00:1]/x", false},
			{any, "https://[fec0::1]/x", false},
			{any, "https://[2606:4700::1111]/x", true},
			{&delivery.EndpointPolicy{Hosts: []string{"127.0.0.1"}, AllowPrivate: true}, "https://127.0.0.1:8443/wp/x", true},
		} {
			err := tt.policy.CheckURL(tt.endpoint)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, delivery.ErrEndpointRefused) {
				t.Errorf("%s (hosts %v): %v, want ok %v", tt.endpoint, tt.policy.Hosts, err, tt.ok)
			}
		}
	})

	// The simulator's certificate names example.com; a resolver maps that
	// name to the simulator on loopback, as a hostile DNS record would.
	toLoopback := func(b *testBundle) func(context.Context, string) ([]netip.Addr, error) {
		return func(_ context.Context, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
	}
	renamed := func(b *testBundle) (delivery.Device, netip.AddrPort) {
		d := b.webPushDevice(1)
		u, _ := url.Parse(d.Token)
		addr := netip.MustParseAddrPort(u.Host)
		u.Host = "example.com:" + u.Port()
		d.Token = u.String()
		return d, addr
	}

	t.Run("ANameThatResolvesToLoopbackIsRefusedWhenDialling", func(t *testing.T) {
		t.Parallel()
		var policy delivery.EndpointPolicy
		b := setup(t, func(_ *delivery.Credentials, o *delivery.Options) {
			policy = delivery.EndpointPolicy{Hosts: []string{"example.com"}}
			o.WebPush = &policy
		})
		policy.LookupIP = toLoopback(b)
		d, _ := renamed(b)
		before := b.sim.Requests()
		o := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
		if o.Class != delivery.ClassDeviceGone || !strings.Contains(o.Reason, "no public address") || strings.Contains(o.Reason, d.Token) {
			t.Fatalf("outcome %+v", o)
		}
		if b.sim.Requests() != before {
			t.Fatal("a request reached the loopback address")
		}
	})

	t.Run("AnAllowedAddressIsDialled", func(t *testing.T) {
		t.Parallel()
		var policy delivery.EndpointPolicy
		b := setup(t, func(_ *delivery.Credentials, o *delivery.Options) {
			policy = delivery.EndpointPolicy{Hosts: []string{"example.com"}}
			o.WebPush = &policy
		})
		policy.LookupIP = toLoopback(b)
		d, addr := renamed(b)
		policy.AllowAddrs = []netip.AddrPort{addr}
		before := b.sim.Requests()
		// The request arrives (the simulator then refuses the VAPID token's
		// audience, which names example.com: that is beside the point).
		if o := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]; strings.Contains(o.Reason, "refused") ||
			b.sim.Requests() != before+1 {
			t.Fatalf("outcome %+v", o)
		}
	})

	t.Run("AStoredEndpointOutsideThePolicyIsNeverContacted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(_ *delivery.Credentials, o *delivery.Options) { o.WebPush = &delivery.EndpointPolicy{} })
		d := b.webPushDevice(1) // https://127.0.0.1:port/wp/...
		before := b.sim.Requests()
		o := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
		if o.Class != delivery.ClassDeviceGone || b.sim.Requests() != before {
			t.Fatalf("outcome %+v, %d requests reached the simulator", o, b.sim.Requests()-before)
		}
	})
}
