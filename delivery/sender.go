package delivery

import (
	"context"
	"crypto/ecdh"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Credentials are one app's provider credentials; nil means the platform is
// not configured for the app.
type Credentials struct {
	APNs  *APNsCredentials `json:"apns,omitempty"`
	FCM   *FCMCredentials  `json:"fcm,omitempty"`
	VAPID *VAPIDKeys       `json:"vapid,omitempty"`
}

// Options tune a Sender.
type Options struct {
	// RootCAs replaces the system roots for provider connections; the
	// simulator's certificate is trusted this way.
	RootCAs *x509.CertPool
	// Concurrency fixes the requests in flight per platform across every
	// Send call on the sender, so batches sent at once share one bound. 0,
	// the default, lets the bound follow each provider's latency (see
	// concurrencyLimit): more requests in flight to a provider that answers
	// slowly, fewer when answers start to queue.
	Concurrency int
	Logger      *slog.Logger
	// Now is the clock for VAPID tokens; nil means time.Now.
	Now func() time.Time
	// Rates caps sends per second per platform for this sender, which holds
	// one provider project or key. A missing FCM entry means FCM's default
	// quota of 600,000 messages a minute; missing others are unlimited.
	Rates map[Platform]float64
	// WebPush limits where Web Push requests may go (see EndpointPolicy);
	// nil sends anywhere, which only tests should want.
	WebPush *EndpointPolicy
}

// DefaultFCMRate is FCM's default per-project quota, per second.
const DefaultFCMRate = 600_000.0 / 60

// Sender delivers to one app's devices. It holds long-lived provider clients
// and is safe for concurrent use; build one per app and credential set.
//
// Every device gets exactly one Outcome, whose Class tells the caller what the
// provider may hold:
//   - An HTTP answer is classed by its status and reason: ClassDelivered,
//     ClassDeviceGone, ClassRejected, ClassThrottled, ClassConfigError, or
//     ClassRetryable for a 5xx (the provider said it did not take it).
//   - A send that ends with no answer is classed by what was written, which
//     each request follows with net/http/httptrace: ClassUnknown if a request
//     was written whole and no response came (the provider may have it),
//     ClassNotSent if the caller's context ended before any was written whole,
//     ClassRetryable otherwise (no request the provider may have taken: a
//     refused connection, DNS, TLS, the per-request timeout before writing, a
//     stream the server refused).
//   - A device whose turn comes after the caller's context ended, or whose
//     wait for a rate limit or an in-flight slot ends because it did, is
//     ClassNotSent without a request being started.
type Sender struct {
	apns        *apnsSender
	fcm         *fcmSender
	webpush     *webPushSender
	concurrency int
	logger      *slog.Logger
	limiters    map[Platform]*rate.Limiter
	inflight    map[Platform]*concurrencyLimit
	workers     workerPool
	// requestTimeout bounds each provider request; see defaultRequestTimeout.
	requestTimeout time.Duration
	// broken holds, per platform, the reason credentials were refused: once a
	// provider rejects them, sending stops instead of burning the audience.
	broken sync.Map // Platform -> string
}

// defaultRequestTimeout bounds one provider request (for FCM, one Send with
// the SDK's own retries). It is a context deadline rather than
// http.Client.Timeout, which costs a timer and a goroutine per request in
// net/http. When it ends a request that was written whole, the outcome is
// ClassUnknown; before anything was written, ClassRetryable.
const defaultRequestTimeout = 30 * time.Second

// ErrConfig wraps credential problems found while building a Sender.
var ErrConfig = errors.New("delivery: bad credentials")

// NewSender builds provider clients for the configured platforms.
func NewSender(ctx context.Context, creds Credentials, opts Options) (*Sender, error) {
	s := &Sender{concurrency: opts.Concurrency, logger: opts.Logger, requestTimeout: defaultRequestTimeout}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s.inflight = map[Platform]*concurrencyLimit{}
	for _, p := range []Platform{PlatformAPNs, PlatformFCM, PlatformWebPush} {
		if s.concurrency > 0 {
			s.inflight[p] = newFixedLimit(s.concurrency)
		} else {
			s.inflight[p] = newAdaptiveLimit()
		}
	}
	s.limiters = map[Platform]*rate.Limiter{}
	rates := map[Platform]float64{PlatformFCM: DefaultFCMRate}
	for p, r := range opts.Rates {
		rates[p] = r
	}
	for p, r := range rates {
		if r > 0 {
			// A tenth of a second's worth of burst keeps the rate smooth.
			s.limiters[p] = rate.NewLimiter(rate.Limit(r), max(1, int(r/10)))
		}
	}
	var err error
	if creds.APNs != nil {
		if s.apns, err = newAPNsSender(creds.APNs, opts.RootCAs, s.requestTimeout); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	transport := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: opts.RootCAs},
		ForceAttemptHTTP2: true,
		// Connections kept for providers speaking HTTP/1.1 (some Web Push
		// services), as many as the requests in flight that fit.
		MaxIdleConnsPerHost: max(s.concurrency, 128),
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	if creds.FCM != nil {
		if s.fcm, err = newFCMSender(ctx, creds.FCM, opts.RootCAs, transport, s.requestTimeout); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if creds.VAPID != nil {
		signer, err := newVAPIDSigner(creds.VAPID, now)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		web := &http.Client{Transport: transport,
			// A push service answers; it does not send Herald elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if opts.WebPush != nil {
			t := transport.Clone()
			t.DialContext = opts.WebPush.DialContext
			web.Transport = t
		}
		s.webpush = &webPushSender{signer: signer, client: web, timeout: s.requestTimeout, policy: opts.WebPush}
	}
	return s, nil
}

// Broken reports the reason a platform's credentials were refused, if they were.
func (s *Sender) Broken(p Platform) (string, bool) {
	v, ok := s.broken.Load(p)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// Send delivers m to every device, once, and returns one Outcome per device
// in the order of devices. The payload is rendered once per platform.
func (s *Sender) Send(ctx context.Context, m *Message, devices []Device) []Outcome {
	return s.send(ctx, m, devices, nil)
}

func (s *Sender) send(ctx context.Context, m *Message, devices []Device, stream *rate.Limiter) []Outcome {
	outcomes := make([]Outcome, len(devices))
	byPlatform := map[Platform][]int{}
	for i := range devices {
		byPlatform[devices[i].Platform] = append(byPlatform[devices[i].Platform], i)
	}
	var wg sync.WaitGroup
	for platform, idx := range byPlatform {
		send, err := s.prepare(platform, m)
		if err != nil {
			class := ClassConfigError
			if errors.Is(err, ErrPayloadTooLarge) {
				class = ClassRejected
			}
			for _, i := range idx {
				outcomes[i] = Outcome{DeviceID: devices[i].ID, Platform: platform, Class: class, Reason: err.Error()}
			}
			continue
		}
		// A slot is taken before a request is handed to a worker, so
		// concurrent Send calls share the sender's bound and no request
		// waits on a worker. Each platform is dispatched on its own, so a
		// slow one holds up no other.
		slots := s.inflight[platform]
		wg.Go(func() {
			for _, i := range idx {
				if reason, broken := s.Broken(platform); broken {
					outcomes[i] = Outcome{DeviceID: devices[i].ID, Platform: platform, Class: ClassConfigError, Reason: reason}
					continue
				}
				// No request starts once the caller's context ended: the
				// device is not sent, not failed.
				if err := s.wait(ctx, platform, stream); err != nil {
					outcomes[i] = Outcome{DeviceID: devices[i].ID, Platform: platform, Class: ClassNotSent, Reason: notSentReason(ctx, err)}
					continue
				}
				if err := slots.acquire(ctx); err != nil {
					outcomes[i] = Outcome{DeviceID: devices[i].ID, Platform: platform, Class: ClassNotSent, Reason: notSentReason(ctx, err)}
					continue
				}
				wg.Add(1)
				s.workers.run(func() {
					defer wg.Done()
					start := time.Now()
					var o Outcome
					defer func() { slots.release(time.Since(start), sampleOf(o.Class)) }()
					o = send(ctx, &devices[i])
					if o.Class == ClassConfigError {
						if _, loaded := s.broken.LoadOrStore(platform, o.Reason); !loaded {
							s.logger.Error("provider refused credentials; sending stopped for this platform",
								"platform", platform, "reason", o.Reason)
						}
					}
					outcomes[i] = o
				})
			}
		})
	}
	wg.Wait()
	return outcomes
}

// wait takes a token from the provider's bucket and the stream's. It fails
// when ctx has ended or will end before a token comes.
func (s *Sender) wait(ctx context.Context, p Platform, stream *rate.Limiter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l := s.limiters[p]; l != nil {
		if err := l.Wait(ctx); err != nil {
			return err
		}
	}
	if stream != nil {
		return stream.Wait(ctx)
	}
	return nil
}

// sampleOf says what an outcome tells the in-flight limit: an answer's
// round trip is the provider's latency; a throttle says to slow down; a
// failure to connect, a request cut off or never sent says nothing about
// how fast the provider answers.
func sampleOf(c Class) sampleKind {
	switch c {
	case ClassDelivered, ClassDeviceGone, ClassRejected:
		return sampleAnswered
	case ClassThrottled:
		return sampleThrottled
	default:
		return sampleNone
	}
}

// InFlightLimit is how many requests to platform's provider the sender lets
// be in flight at once, now.
func (s *Sender) InFlightLimit(p Platform) int {
	if l := s.inflight[p]; l != nil {
		return l.current()
	}
	return 0
}

// prepare renders m for platform once and returns the per-device send.
func (s *Sender) prepare(p Platform, m *Message) (func(context.Context, *Device) Outcome, error) {
	switch p {
	case PlatformAPNs:
		if s.apns == nil {
			return nil, errors.New("apns is not configured for this app")
		}
		body, err := RenderAPNs(m)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, d *Device) Outcome { return s.apns.send(ctx, personalize(body, d.Vars), m, d) }, nil
	case PlatformFCM:
		if s.fcm == nil {
			return nil, errors.New("fcm is not configured for this app")
		}
		tmpl := RenderFCM(m)
		return func(ctx context.Context, d *Device) Outcome { return s.fcm.send(ctx, personalizeFCM(tmpl, d.Vars), d) }, nil
	case PlatformWebPush:
		if s.webpush == nil {
			return nil, errors.New("web push is not configured for this app")
		}
		body, err := RenderWebPush(m)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, d *Device) Outcome {
			p := personalize(body, d.Vars)
			if len(p) > WebPushMaxPlaintext {
				return Outcome{DeviceID: d.ID, Platform: PlatformWebPush, Class: ClassRejected, Reason: "payload too large"}
			}
			return s.webpush.send(ctx, p, m, d)
		}, nil
	}
	return nil, fmt.Errorf("unknown platform %q", p)
}

// notSentReason explains a device left unsent because of ctx or a rate
// limiter's refusal (err).
func notSentReason(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "not sent: " + transportCause(ctx, ctx, ctx.Err())
	}
	return "not sent: " + err.Error()
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func isErr(err, target error) bool { return errors.Is(err, target) }

func ecdhP256PublicKey(b []byte) (*ecdh.PublicKey, error) { return ecdh.P256().NewPublicKey(b) }
