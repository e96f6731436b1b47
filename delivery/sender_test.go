package delivery_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

type testBundle struct {
	sim    *simulator.Server
	sender *delivery.Sender
	creds  delivery.Credentials
}

// setup starts a simulator and a sender for it; mods adjust the sender's
// credentials and options before it is built.
func setup(t *testing.T, mods ...func(*delivery.Credentials, *delivery.Options)) *testBundle {
	t.Helper()
	sim, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	creds := simCredentials(t, sim)
	opts := delivery.Options{RootCAs: sim.CertPool(), Concurrency: 16}
	for _, mod := range mods {
		mod(&creds, &opts)
	}
	sender, err := delivery.NewSender(context.Background(), creds, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{sim: sim, sender: sender, creds: creds}
}

func simCredentials(t *testing.T, sim *simulator.Server) delivery.Credentials {
	t.Helper()
	p8, err := sim.NewAPNsKey("TEAM123456", "KEY1234567")
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	return delivery.Credentials{
		APNs:  &delivery.APNsCredentials{KeyP8: p8, KeyID: "KEY1234567", TeamID: "TEAM123456", Topic: "com.example.app", Endpoint: sim.URL},
		FCM:   &delivery.FCMCredentials{ProjectID: sim.FCMProject, Endpoint: sim.URL, AccessToken: sim.FCMAccessToken},
		VAPID: &delivery.VAPIDKeys{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@example.com"},
	}
}

func (b *testBundle) webPushDevice(id int64) delivery.Device {
	sub := b.sim.NewWebPushSubscription(b.creds.VAPID.PublicKey)
	return delivery.Device{ID: id, Platform: delivery.PlatformWebPush, Token: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth}
}

var testMessage = &delivery.Message{
	Title: "Hello", Body: "A message for you", URL: "https://example.com/x",
	Actions:     []delivery.Action{{ID: "confirm", Label: "Confirm", URL: "https://example.com/c"}},
	CollapseKey: "welcome", TTL: time.Hour,
}

func TestSendDeliversOnEveryPlatform(t *testing.T) {
	t.Parallel()
	b := setup(t)
	devices := []delivery.Device{
		{ID: 1, Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(false)},
		{ID: 2, Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(true), APNsSandbox: true},
		{ID: 3, Platform: delivery.PlatformFCM, Token: b.sim.NewFCMToken()},
		b.webPushDevice(4),
	}
	outcomes := b.sender.Send(context.Background(), testMessage, devices)
	for i, o := range outcomes {
		if o.Class != delivery.ClassDelivered || o.ProviderID == "" {
			t.Fatalf("device %d: %+v", devices[i].ID, o)
		}
	}
	apns := b.sim.Received("apns", devices[0].Token)
	if len(apns) != 1 || !strings.Contains(string(apns[0].Payload), `"title":"Hello"`) {
		t.Fatalf("apns received %v", apns)
	}
	if h := apns[0].Header; h.Get("apns-priority") != "5" || h.Get("apns-push-type") != "alert" || h.Get("apns-collapse-id") != "welcome" {
		t.Fatalf("apns headers %v", h)
	}
	if got := b.sim.Received("fcm", devices[2].Token); len(got) != 1 || !strings.Contains(string(got[0].Payload), `"title":"Hello"`) {
		t.Fatalf("fcm received %v", got)
	}
	wp := b.sim.Received("webpush", devices[3].Token)
	if len(wp) != 1 {
		t.Fatalf("webpush received %v", wp)
	}
	var p struct {
		Title   string            `json:"title"`
		Actions []delivery.Action `json:"actions"`
	}
	if err := json.Unmarshal(wp[0].Payload, &p); err != nil || p.Title != "Hello" || p.Actions[0].ID != "confirm" {
		t.Fatalf("decrypted web push payload %q (%v)", wp[0].Payload, err)
	}
	if h := wp[0].Header; h.Get("TTL") != "3600" || h.Get("Urgency") != "normal" || h.Get("Topic") != "welcome" {
		t.Fatalf("webpush headers %v", h)
	}
}

func TestSendClassifiesOutcomes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wpGone, wpThrottled, wpBroken := b.webPushDevice(10), b.webPushDevice(11), b.webPushDevice(12)
	tests := []struct {
		name   string
		device delivery.Device
		fault  *simulator.Fault
		class  delivery.Class
	}{
		{"apns unregistered", delivery.Device{Platform: delivery.PlatformAPNs}, &simulator.Fault{Status: 410, Reason: "Unregistered"}, delivery.ClassDeviceGone},
		{"apns expired token", delivery.Device{Platform: delivery.PlatformAPNs}, &simulator.Fault{Status: 410, Reason: "ExpiredToken"}, delivery.ClassDeviceGone},
		{"apns too many requests", delivery.Device{Platform: delivery.PlatformAPNs}, &simulator.Fault{Status: 429, Reason: "TooManyRequests"}, delivery.ClassThrottled},
		{"apns internal error", delivery.Device{Platform: delivery.PlatformAPNs}, &simulator.Fault{Status: 500, Reason: "InternalServerError"}, delivery.ClassRetryable},
		{"apns bad topic", delivery.Device{Platform: delivery.PlatformAPNs}, &simulator.Fault{Status: 400, Reason: "BadTopic"}, delivery.ClassRejected},
		{"apns malformed token", delivery.Device{Platform: delivery.PlatformAPNs, Token: "zz"}, nil, delivery.ClassDeviceGone},
		{"fcm unregistered", delivery.Device{Platform: delivery.PlatformFCM}, &simulator.Fault{Status: 404, Reason: "UNREGISTERED"}, delivery.ClassDeviceGone},
		{"fcm quota", delivery.Device{Platform: delivery.PlatformFCM}, &simulator.Fault{Status: 429, Reason: "QUOTA_EXCEEDED"}, delivery.ClassThrottled},
		{"fcm internal", delivery.Device{Platform: delivery.PlatformFCM}, &simulator.Fault{Status: 500, Reason: "INTERNAL"}, delivery.ClassRetryable},
		{"fcm invalid token", delivery.Device{Platform: delivery.PlatformFCM, Token: "not a token"}, nil, delivery.ClassDeviceGone},
		{"webpush gone", wpGone, &simulator.Fault{Status: 410, Reason: "gone"}, delivery.ClassDeviceGone},
		{"webpush throttled", wpThrottled, &simulator.Fault{Status: 429, Reason: "slow down", RetryAfter: 7 * time.Second}, delivery.ClassThrottled},
		// Drop reads the whole request before resetting the stream: the
		// provider may have taken it, so it is not retryable.
		{"webpush dropped connection", wpBroken, &simulator.Fault{Drop: true}, delivery.ClassUnknown},
		{"webpush unknown subscription", delivery.Device{Platform: delivery.PlatformWebPush, Token: b.sim.URL + "/wp/nope", P256dh: wpGone.P256dh, Auth: wpGone.Auth}, nil, delivery.ClassDeviceGone},
	}
	for i, tt := range tests {
		d := tt.device
		d.ID = int64(100 + i)
		if d.Token == "" {
			switch d.Platform {
			case delivery.PlatformAPNs:
				d.Token = b.sim.NewAPNsToken(false)
			case delivery.PlatformFCM:
				d.Token = b.sim.NewFCMToken()
			}
		}
		if tt.fault != nil {
			b.sim.SetFault(string(d.Platform), d.Token, *tt.fault)
		}
		got := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
		if got.Class != tt.class {
			t.Errorf("%s: class %s (%s), want %s", tt.name, got.Class, got.Reason, tt.class)
		}
		if tt.name == "webpush throttled" && got.RetryAfter != 7*time.Second {
			t.Errorf("%s: RetryAfter %v, want 7s", tt.name, got.RetryAfter)
		}
	}
}

func TestSendAPNsEnvironmentMismatchIsNotGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A sandbox token registered as production is refused by the production
	// host; the sender must try the sandbox before calling it gone.
	d := delivery.Device{ID: 1, Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(true)}
	got := b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
	if got.Class != delivery.ClassDelivered {
		t.Fatalf("outcome %+v", got)
	}
}

func TestSendStopsPlatformOnCredentialFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	creds := b.creds
	wrong := *creds.FCM
	wrong.AccessToken = "revoked"
	creds.FCM = &wrong
	// An APNs key the simulator never trusted.
	other, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p8, _ := other.NewAPNsKey("TEAM123456", "UNKNOWNKEY")
	apns := *creds.APNs
	apns.KeyP8, apns.KeyID = p8, "UNKNOWNKEY"
	creds.APNs = &apns
	sender, err := delivery.NewSender(context.Background(), creds, delivery.Options{RootCAs: b.sim.CertPool(), Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	var devices []delivery.Device
	for i := range 20 {
		devices = append(devices,
			delivery.Device{ID: int64(i), Platform: delivery.PlatformFCM, Token: b.sim.NewFCMToken()},
			delivery.Device{ID: int64(100 + i), Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(false)})
	}
	before := b.sim.Delivered()
	for _, o := range sender.Send(context.Background(), testMessage, devices) {
		if o.Class != delivery.ClassConfigError {
			t.Fatalf("outcome %+v", o)
		}
	}
	if b.sim.Delivered() != before {
		t.Fatal("something was delivered with bad credentials")
	}
	for _, p := range []delivery.Platform{delivery.PlatformFCM, delivery.PlatformAPNs} {
		if _, broken := sender.Broken(p); !broken {
			t.Fatalf("%s not marked broken", p)
		}
	}
}

func TestSendRejectsOversizedPayload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := &delivery.Message{Title: "x", Body: strings.Repeat("é", 3000)}
	d := []delivery.Device{{ID: 1, Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(false)}, b.webPushDevice(2)}
	for _, o := range b.sender.Send(context.Background(), big, d) {
		if o.Class != delivery.ClassRejected {
			t.Fatalf("outcome %+v", o)
		}
	}
}

// TestWebPushCrossCheck sends the same payload with webpush-go and with
// Herald's encoder to the simulator, which decrypts both.
func TestWebPushCrossCheck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.webPushDevice(1)
	payload := []byte(`{"title":"same bytes"}`)
	resp, err := webpush.SendNotification(payload, &webpush.Subscription{Endpoint: d.Token, Keys: webpush.Keys{P256dh: d.P256dh, Auth: d.Auth}},
		&webpush.Options{HTTPClient: b.sim.Client(), Subscriber: "ops@example.com", TTL: 60,
			VAPIDPublicKey: b.creds.VAPID.PublicKey, VAPIDPrivateKey: b.creds.VAPID.PrivateKey})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("webpush-go status %d", resp.StatusCode)
	}
	if o := b.sender.Send(context.Background(), &delivery.Message{Title: "same bytes"}, []delivery.Device{d})[0]; o.Class != delivery.ClassDelivered {
		t.Fatalf("herald outcome %+v", o)
	}
	got := b.sim.Received("webpush", d.Token)
	if len(got) != 2 || string(got[0].Payload) != string(got[1].Payload) || string(got[0].Payload) != string(payload) {
		t.Fatalf("decrypted payloads differ: %q", got)
	}
}

// TestAPNsOpensMoreConnectionsAtTheStreamLimit checks that one long-lived
// client per credential still spreads load over several HTTP/2 connections
// when the server's concurrent-stream limit is reached.
func TestAPNsOpensMoreConnectionsAtTheStreamLimit(t *testing.T) {
	t.Parallel()
	sim, err := simulator.Start(simulator.Config{MaxConcurrentStreams: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	creds := simCredentials(t, sim)
	sender, err := delivery.NewSender(context.Background(), creds, delivery.Options{RootCAs: sim.CertPool(), Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	// Slow answers keep streams open so the limit is reached.
	devices := make([]delivery.Device, 64)
	for i := range devices {
		devices[i] = delivery.Device{ID: int64(i), Platform: delivery.PlatformAPNs, Token: sim.NewAPNsToken(false)}
		sim.SetFault("apns", devices[i].Token, simulator.Fault{Delay: 50 * time.Millisecond})
	}
	// A cold connection may send more streams than the server allows before
	// it reads the server's SETTINGS; those streams are refused unprocessed,
	// come back retryable, and a retry delivers them once.
	out := sender.SendWith(context.Background(), testMessage, devices,
		delivery.SendOptions{MaxAttempts: 3, Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
	for _, o := range out {
		if o.Class != delivery.ClassDelivered {
			t.Fatalf("outcome %+v", o)
		}
	}
	for _, d := range devices {
		if n := len(sim.Received("apns", d.Token)); n != 1 {
			t.Fatalf("device received %d", n)
		}
	}
	if n := sim.Connections(); n < 2 {
		t.Fatalf("%d connection(s) for 32 concurrent pushes with 4 streams each", n)
	}
	got := sim.Received("apns", devices[0].Token)
	if exp := got[0].Header.Get("apns-expiration"); exp == "" || exp == "0" {
		t.Fatalf("apns-expiration %q", exp)
	}
}

func TestSendFillsPerDevicePlaceholders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := &delivery.Message{Title: "Hi", Body: "News", Actions: []delivery.Action{{ID: "unsubscribe", Label: "Stop", URL: "{{unsubscribe_url}}"}},
		Data: map[string]string{"unsubscribe_url": "{{unsubscribe_url}}"}}
	wp := b.webPushDevice(1)
	wp.Vars = map[string]string{"unsubscribe_url": `https://h.example/u/one"quote`}
	apns := delivery.Device{ID: 2, Platform: delivery.PlatformAPNs, Token: b.sim.NewAPNsToken(false), Vars: map[string]string{"unsubscribe_url": "https://h.example/u/two"}}
	fcm := delivery.Device{ID: 3, Platform: delivery.PlatformFCM, Token: b.sim.NewFCMToken(), Vars: map[string]string{"unsubscribe_url": "https://h.example/u/three"}}
	for _, o := range b.sender.Send(context.Background(), m, []delivery.Device{wp, apns, fcm}) {
		if o.Class != delivery.ClassDelivered {
			t.Fatalf("outcome %+v", o)
		}
	}
	var p struct {
		Data map[string]string `json:"data"`
	}
	json.Unmarshal(b.sim.Received("webpush", wp.Token)[0].Payload, &p)
	if p.Data["unsubscribe_url"] != `https://h.example/u/one"quote` {
		t.Fatalf("web push data %v", p.Data)
	}
	if got := string(b.sim.Received("apns", apns.Token)[0].Payload); !strings.Contains(got, "https://h.example/u/two") || strings.Contains(got, "{{") {
		t.Fatalf("apns payload %s", got)
	}
	if got := string(b.sim.Received("fcm", fcm.Token)[0].Payload); !strings.Contains(got, "https://h.example/u/three") || strings.Contains(got, "{{") {
		t.Fatalf("fcm payload %s", got)
	}
}

// TestInFlightFollowsTheProvidersLatency sends to a provider that answers
// after 20 ms with the default, adaptive in-flight bound: it grows past its
// start, so the pace is not that of a fixed cap, and the messages arrive once.
func TestInFlightFollowsTheProvidersLatency(t *testing.T) {
	t.Parallel()
	sim, err := simulator.Start(simulator.Config{Latency: 20 * time.Millisecond, CountOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sender, err := delivery.NewSender(context.Background(), simCredentials(t, sim), delivery.Options{RootCAs: sim.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	start := sender.InFlightLimit(delivery.PlatformFCM)
	devices := make([]delivery.Device, 4000)
	for i := range devices {
		devices[i] = delivery.Device{ID: int64(i), Platform: delivery.PlatformFCM, Token: sim.NewFCMToken()}
	}
	for _, o := range sender.Send(context.Background(), testMessage, devices) {
		if o.Class != delivery.ClassDelivered {
			t.Fatalf("outcome %+v", o)
		}
	}
	if got := sender.InFlightLimit(delivery.PlatformFCM); got <= start {
		t.Fatalf("in-flight bound %d after 4,000 sends at 20 ms, want it grown past %d", got, start)
	}
	if n := sim.Delivered(); n != int64(len(devices)) {
		t.Fatalf("simulator received %d, want %d", n, len(devices))
	}
}
