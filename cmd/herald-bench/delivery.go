package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	firebase "firebase.google.com/go/v4"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

// deliveryBench holds a simulator's address and credentials for it.
type deliveryBench struct {
	url        string
	roots      *x509.CertPool
	fcmProject string
	fcmToken   string
	creds      delivery.Credentials
	conc       int
	sim        *simulator.Server // when in this process
}

func newDeliveryBench(conc int) (*deliveryBench, error) {
	sim, err := simulator.Start(simulator.Config{CountOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	p8, err := sim.NewAPNsKey("BENCHTEAM1", "BENCHKEY01")
	if err != nil {
		return nil, err
	}
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return nil, err
	}
	return &deliveryBench{sim: sim, url: sim.URL, roots: sim.CertPool(), fcmProject: sim.FCMProject, fcmToken: sim.FCMAccessToken,
		conc: conc, creds: delivery.Credentials{
			APNs:  &delivery.APNsCredentials{KeyP8: p8, KeyID: "BENCHKEY01", TeamID: "BENCHTEAM1", Topic: "com.example.bench", Endpoint: sim.URL},
			FCM:   &delivery.FCMCredentials{ProjectID: sim.FCMProject, Endpoint: sim.URL, AccessToken: sim.FCMAccessToken},
			VAPID: &delivery.VAPIDKeys{PublicKey: pub, PrivateKey: priv, Subject: "mailto:bench@example.com"},
		}}, nil
}

var benchMessage = &delivery.Message{
	Title: "Spring sale", Body: "Everything 20% off until Sunday. Tap to see what is new.",
	URL: "https://shop.example.com/sale", TTL: time.Hour, CollapseKey: "sale",
}

// device makes the i-th device of a platform without keeping a list, so
// memory does not grow with the message count.
func (b *deliveryBench) device(p delivery.Platform, i int, subs []simulator.WebPushSubscription) delivery.Device {
	switch p {
	case delivery.PlatformAPNs:
		return delivery.Device{ID: int64(i), Platform: p, Token: fmt.Sprintf("%064x", i), APNsTopic: "com.example.bench"}
	case delivery.PlatformFCM:
		return delivery.Device{ID: int64(i), Platform: p, Token: "bench-token-" + strconv.Itoa(i)}
	}
	s := subs[i%len(subs)]
	return delivery.Device{ID: int64(i), Platform: p, Token: s.Endpoint, P256dh: s.P256dh, Auth: s.Auth}
}

type result struct {
	n    int
	ok   int64
	wall time.Duration
	cpu  time.Duration
}

func (r result) rate() float64   { return float64(r.ok) / r.wall.Seconds() }
func (r result) cpuPer() float64 { return float64(r.cpu.Microseconds()) / float64(r.n) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(n int, fn func() int64) result {
	c0, t0 := cpuTime(), time.Now()
	ok := fn()
	return result{n: n, ok: ok, wall: time.Since(t0), cpu: cpuTime() - c0}
}

// parallel runs send(i) for i in [0, n) on conc goroutines.
func parallel(n, conc int, send func(i int) bool) int64 {
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if send(i) {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return ok.Load()
}

// bare drives the provider's library directly, the way a program without
// Herald would: one client, conc goroutines, a pre-rendered payload.
func (b *deliveryBench) bare(ctx context.Context, p delivery.Platform, n int, subs []simulator.WebPushSubscription) (result, error) {
	roots := b.roots
	switch p {
	case delivery.PlatformAPNs:
		key, err := token.AuthKeyFromBytes([]byte(b.creds.APNs.KeyP8))
		if err != nil {
			return result{}, err
		}
		client := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: b.creds.APNs.KeyID, TeamID: b.creds.APNs.TeamID})
		client.Host = b.url
		client.HTTPClient.Transport.(*http2.Transport).TLSClientConfig = &tls.Config{RootCAs: roots}
		payload, _ := delivery.RenderAPNs(benchMessage)
		return measure(n, func() int64 {
			return parallel(n, b.conc, func(i int) bool {
				res, err := client.PushWithContext(ctx, &apns2.Notification{DeviceToken: fmt.Sprintf("%064x", i),
					Topic: "com.example.bench", Payload: payload, PushType: apns2.PushTypeAlert, Priority: 5})
				return err == nil && res.StatusCode == 200
			})
		}), nil
	case delivery.PlatformFCM:
		hc := &http.Client{Transport: &oauth2.Transport{
			Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: b.fcmToken}),
			Base:   &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: b.conc},
		}}
		app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: b.fcmProject},
			option.WithEndpoint(b.url+"/v1"), option.WithHTTPClient(hc))
		if err != nil {
			return result{}, err
		}
		client, err := app.Messaging(ctx)
		if err != nil {
			return result{}, err
		}
		// The same message Herald sends, so both move the same bytes.
		tmpl := delivery.RenderFCM(benchMessage)
		return measure(n, func() int64 {
			return parallel(n, b.conc, func(i int) bool {
				msg := *tmpl
				msg.Token = "bench-token-" + strconv.Itoa(i)
				_, err := client.Send(ctx, &msg)
				return err == nil
			})
		}), nil
	default:
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: b.conc}}
		payload, _ := delivery.RenderWebPush(benchMessage)
		return measure(n, func() int64 {
			return parallel(n, b.conc, func(i int) bool {
				s := subs[i%len(subs)]
				p := append([]byte(nil), payload...)
				resp, err := webpush.SendNotificationWithContext(ctx, p[:len(p):len(p)],
					&webpush.Subscription{Endpoint: s.Endpoint, Keys: webpush.Keys{P256dh: s.P256dh, Auth: s.Auth}},
					&webpush.Options{HTTPClient: hc, Subscriber: "bench@example.com", TTL: 3600,
						VAPIDPublicKey: b.creds.VAPID.PublicKey, VAPIDPrivateKey: b.creds.VAPID.PrivateKey})
				if err != nil {
					return false
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode == 201
			})
		}), nil
	}
}

// herald sends n messages through delivery.Sender in batches, as campaign
// batch jobs will.
func (b *deliveryBench) herald(ctx context.Context, p delivery.Platform, n, batch int, subs []simulator.WebPushSubscription) (result, error) {
	sender, err := delivery.NewSender(ctx, b.creds, delivery.Options{
		RootCAs: b.roots, Concurrency: b.conc,
		// The simulator is no FCM project; lift the default quota so the
		// benchmark measures the sender, not the token bucket.
		Rates: map[delivery.Platform]float64{delivery.PlatformFCM: 0},
	})
	if err != nil {
		return result{}, err
	}
	// Several batches at once, as River's batch jobs run; the sender's own
	// in-flight bound (b.conc) is shared by all of them.
	const parallelBatches = 4
	var next, ok atomic.Int64
	return measure(n, func() int64 {
		var wg sync.WaitGroup
		for range parallelBatches {
			wg.Go(func() {
				devices := make([]delivery.Device, batch)
				for {
					start := int(next.Add(int64(batch))) - batch
					if start >= n {
						return
					}
					k := min(batch, n-start)
					for j := range k {
						devices[j] = b.device(p, start+j, subs)
					}
					for _, o := range sender.Send(ctx, benchMessage, devices[:k]) {
						if o.Class == delivery.ClassDelivered {
							ok.Add(1)
						}
					}
				}
			})
		}
		wg.Wait()
		return ok.Load()
	}), nil
}

func benchDelivery(ctx context.Context, n, conc int, platforms []string) error {
	b, err := newDeliveryBench(conc)
	if err != nil {
		return err
	}
	defer b.sim.Close()
	subs := make([]simulator.WebPushSubscription, 2000)
	for i := range subs {
		subs[i] = b.sim.NewWebPushSubscription(b.creds.VAPID.PublicKey)
	}
	fmt.Printf("\ndelivery benchmark: %d messages per run, %d in flight, simulator in the same process (CPU includes it)\n", n, conc)
	fmt.Printf("  %-10s %-22s %12s %14s %10s\n", "provider", "sender", "msg/s", "CPU us/msg", "vs bare")
	targets := map[delivery.Platform]float64{delivery.PlatformAPNs: 0.8, delivery.PlatformFCM: 0.8, delivery.PlatformWebPush: 1.8}
	for _, name := range platforms {
		p := delivery.Platform(name)
		// Warm both paths (connections, JWTs) before measuring.
		if _, err := b.bare(ctx, p, min(n, 2000), subs); err != nil {
			return err
		}
		if _, err := b.herald(ctx, p, min(n, 2000), 1000, subs); err != nil {
			return err
		}
		var bare, her result
		if os.Getenv("HERALD_BENCH_ONLY") != "herald" {
			if bare, err = b.bare(ctx, p, n, subs); err != nil {
				return err
			}
		}
		if os.Getenv("HERALD_BENCH_ONLY") != "bare" {
			if her, err = b.herald(ctx, p, n, 1000, subs); err != nil {
				return err
			}
		}
		if only := os.Getenv("HERALD_BENCH_ONLY"); only != "" {
			fmt.Printf("  %-10s only %s: bare %.0f msg/s %.1f us, herald %.0f msg/s %.1f us\n", p, only, bare.rate(), bare.cpuPer(), her.rate(), her.cpuPer())
			continue
		}
		if bare.ok != int64(n) || her.ok != int64(n) {
			return fmt.Errorf("%s: delivered %d bare and %d Herald of %d", p, bare.ok, her.ok, n)
		}
		ratio := her.rate() / bare.rate()
		fmt.Printf("  %-10s %-22s %12.0f %14.1f %10s\n", p, "bare library", bare.rate(), bare.cpuPer(), "")
		fmt.Printf("  %-10s %-22s %12.0f %14.1f %9.2fx  (target >= %.1fx: %s)\n", p, "Herald delivery.Sender", her.rate(), her.cpuPer(),
			ratio, targets[p], verdict(ratio >= targets[p]))
	}
	return nil
}

// benchMemory runs Herald's sender over 100k and 1M messages in child
// processes and prints each one's peak RSS.
func benchMemory(conc int) error {
	fmt.Printf("\ndelivery memory: Herald's sender, APNs, 4 batches of 1,000 at a time, peak RSS of a fresh process\n")
	var peaks []int
	for _, n := range []int{100_000, 1_000_000} {
		cmd := exec.Command(os.Args[0], "-conc", strconv.Itoa(conc), "-child-messages", strconv.Itoa(n))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("child: %v\n%s", err, out)
		}
		kb, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			return fmt.Errorf("child said %q", out)
		}
		peaks = append(peaks, kb)
		fmt.Printf("  %9d messages: peak RSS %6.1f MB\n", n, float64(kb)/1024)
	}
	fmt.Printf("  1M / 100k peak RSS: %.2f (flat means close to 1)\n", float64(peaks[1])/float64(peaks[0]))
	return nil
}

// memoryChild is the child side of benchMemory.
func memoryChild(n, conc int) error {
	b, err := newDeliveryBench(conc)
	if err != nil {
		return err
	}
	r, err := b.herald(context.Background(), delivery.PlatformAPNs, n, 1000, nil)
	if err != nil {
		return err
	}
	if r.ok != int64(n) {
		return fmt.Errorf("delivered %d of %d", r.ok, n)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Println(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return nil
		}
	}
	return fmt.Errorf("no VmHWM in /proc/self/status")
}
