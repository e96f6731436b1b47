// Package simulator is a local push provider that speaks the real protocols:
// APNs over HTTP/2 and TLS with provider-token (JWT) authentication, FCM HTTP
// v1 with bearer tokens and Google's error format, and Web Push (RFC 8030)
// with VAPID (RFC 8292) verification and aes128gcm (RFC 8291) decryption.
//
// Tests, benchmarks and `make run` point the real client libraries at it, so
// no Apple or Google account is needed. It records what each device received
// and injects faults per device.
package simulator

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Received is one message a device received.
type Received struct {
	Platform string
	Token    string
	// Payload is the APNs JSON, the FCM message JSON or the decrypted Web
	// Push plaintext.
	Payload []byte
	Header  http.Header
	At      time.Time
}

// Fault makes the simulator answer a device's requests with an error, or
// with no answer at all. Every fault takes effect after the whole request was
// read and checked, as a provider's would: first Delay, then the first of
// Drop, Cut, Hang and Status that is set.
type Fault struct {
	Status int
	// Reason is the APNs reason, the FCM errorCode or a Web Push body.
	Reason     string
	RetryAfter time.Duration
	// Delay holds the response back; with Status 0 the request then succeeds.
	Delay time.Duration
	// Drop reads the whole request and then aborts it without an answer and
	// without recording it: HTTP/2 resets the stream (INTERNAL_ERROR),
	// HTTP/1.1 closes the connection.
	Drop bool
	// Cut reads the whole request, records it as received (a real provider
	// may have accepted it) and then closes the TCP connection without an
	// answer, as a dying load balancer would: over HTTP/2 every other stream
	// on that connection fails too.
	Cut bool
	// Hang reads the whole request, records it as received and then never
	// answers: the request is held until the client gives up (cancels, times
	// out or closes the connection) or the simulator closes.
	Hang bool
	// Times limits the fault to the next n requests; 0 means always.
	Times int
}

// Server is a running simulator.
type Server struct {
	// URL is the base URL, e.g. https://127.0.0.1:8443. APNs is served at
	// URL (production) and URL+"/sandbox"; FCM at URL+"/v1"; Web Push
	// endpoints at URL+"/wp/{id}".
	URL string
	// FCMProject and FCMAccessToken are what the FCM endpoint accepts.
	FCMProject     string
	FCMAccessToken string

	srv     *httptest.Server
	latency atomic.Int64 // nanoseconds
	logger  *slog.Logger
	now     func() time.Time

	mu        sync.Mutex
	received  map[string][]Received // platform + ":" + token
	apnsKeys  map[string]apnsKey    // key id
	sandbox   map[string]bool       // APNs tokens minted for the sandbox
	webpush   map[string]*subscription
	faults    map[string]*Fault // platform + ":" + token
	random    map[string]randomFault
	countOnly bool
	verified  tokenCache // provider and VAPID JWTs already checked
	secret    []byte
	total     atomic.Int64
	delivered atomic.Int64
	conns     atomic.Int64
	first     atomic.Int64 // unix nanoseconds of the first delivery since start or Reset
	// arrived is closed and cleared when a message is recorded; WaitReceived
	// makes it, so that recording costs nothing while no one waits.
	arrived chan struct{}
	// closing is closed by Close, releasing requests held by Hang.
	closing   chan struct{}
	closeOnce sync.Once
}

// connKey is the request context key of the request's connection, for Cut.
type connKey struct{}

type apnsKey struct {
	teamID string
	pub    *ecdsa.PublicKey
}

type subscription struct {
	private *ecdh.PrivateKey
	auth    []byte
	// appServerKey is the VAPID public key the subscription was made with;
	// requests signed with another key are refused, as browsers' services do.
	appServerKey string
}

// Config configures Start.
type Config struct {
	// Listen is the address to listen on; empty picks a free loopback port.
	Listen string
	Logger *slog.Logger
	Now    func() time.Time
	// CountOnly keeps counters but not what each device received, so that
	// benchmarks of millions of messages use flat memory.
	CountOnly bool
	// MaxConcurrentStreams limits HTTP/2 streams per connection, as APNs
	// does (and lowers after rejected pushes); 0 means Go's default of 250.
	MaxConcurrentStreams int
	// Secret, when set, lets the simulator recognise subscriptions made by
	// DerivedWebPushSubscription after a restart, so seeded demo devices
	// keep working.
	Secret []byte
	// Latency holds back every provider answer, as a real provider's
	// network and processing do (tens of milliseconds); SetLatency changes
	// it while the simulator runs.
	Latency time.Duration
}

// Start starts a simulator with a fresh self-signed certificate.
func Start(cfg Config) (*Server, error) {
	s := &Server{
		FCMProject: "herald-simulator", FCMAccessToken: "simulator-access-token",
		logger: cfg.Logger, now: cfg.Now,
		received: map[string][]Received{}, apnsKeys: map[string]apnsKey{}, sandbox: map[string]bool{},
		webpush: map[string]*subscription{}, faults: map[string]*Fault{}, random: map[string]randomFault{},
		countOnly: cfg.CountOnly, secret: cfg.Secret, closing: make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.SetLatency(cfg.Latency)
	addr := cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("simulator: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /3/device/{token}", s.lagged(s.apns(false)))
	mux.HandleFunc("POST /sandbox/3/device/{token}", s.lagged(s.apns(true)))
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", s.lagged(s.fcm))
	mux.HandleFunc("POST /wp/{id}", s.lagged(s.webPush))
	mux.HandleFunc("POST /sim/latency", s.latencyHTTP)
	mux.HandleFunc("GET /sim/stats", s.stats)
	mux.HandleFunc("GET /sim/received", s.receivedHTTP)
	mux.HandleFunc("POST /sim/reset", s.reset)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Listener = ln
	s.srv.EnableHTTP2 = true
	if cfg.MaxConcurrentStreams > 0 {
		s.srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: cfg.MaxConcurrentStreams}
	}
	s.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	s.srv.Config.ErrorLog = slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server, releasing requests held by a Hang fault.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// CertPool trusts the system's roots and the simulator's certificate, so that
// real push services (a real browser's Web Push endpoint) still verify.
func (s *Server) CertPool() *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AddCert(s.srv.Certificate())
	return pool
}

// CertificatePEM is the simulator's certificate, for HERALD_PROVIDER_CA_FILE.
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Client is an HTTP client that trusts the simulator.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// NewAPNsKey makes a signing key for a team, trusts it and returns it as the
// PEM text of a .p8 file.
func (s *Server) NewAPNsKey(teamID, keyID string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	s.TrustAPNsKey(teamID, keyID, &key.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// TrustAPNsKey accepts provider tokens signed by pub for a team and key id.
func (s *Server) TrustAPNsKey(teamID, keyID string, pub *ecdsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apnsKeys[keyID] = apnsKey{teamID: teamID, pub: pub}
}

// NewAPNsToken mints a device token; sandbox tokens are refused by the
// production host with BadDeviceToken, as Apple's are.
func (s *Server) NewAPNsToken(sandbox bool) string {
	tok := hex.EncodeToString(randomBytes(32))
	if sandbox {
		s.mu.Lock()
		s.sandbox[tok] = true
		s.mu.Unlock()
	}
	return tok
}

// NewFCMToken mints a registration token.
func (s *Server) NewFCMToken() string {
	return "sim:" + base64.RawURLEncoding.EncodeToString(randomBytes(48))
}

// WebPushSubscription is what a browser's PushSubscription.toJSON() holds.
type WebPushSubscription struct {
	Endpoint string `json:"endpoint"`
	P256dh   string `json:"p256dh"`
	Auth     string `json:"auth"`
}

// NewWebPushSubscription mints a subscription for an application server key
// (base64url VAPID public key), as a browser's push service would. The
// simulator keeps the private key so it can decrypt what is sent to it.
func (s *Server) NewWebPushSubscription(appServerKey string) WebPushSubscription {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	id := base64.RawURLEncoding.EncodeToString(randomBytes(18))
	sub := &subscription{private: priv, auth: randomBytes(16), appServerKey: appServerKey}
	s.mu.Lock()
	s.webpush[id] = sub
	s.mu.Unlock()
	return WebPushSubscription{
		Endpoint: s.URL + "/wp/" + id,
		P256dh:   base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		Auth:     base64.RawURLEncoding.EncodeToString(sub.auth),
	}
}

// SetFault injects f for one device: platform is "apns", "fcm" or "webpush",
// token is the device token or the Web Push endpoint.
func (s *Server) SetFault(platform, token string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[platform+":"+token] = &f
}

type randomFault struct {
	probability float64
	fault       Fault
}

// SetRandomFault answers a share of a platform's requests (probability
// 0..1) with f, whatever the device, as a provider under strain would.
// Probability 0 removes it.
func (s *Server) SetRandomFault(platform string, probability float64, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if probability <= 0 {
		delete(s.random, platform)
		return
	}
	s.random[platform] = randomFault{probability: probability, fault: f}
}

// ClearFault removes a device's fault.
func (s *Server) ClearFault(platform, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, platform+":"+token)
}

// Received returns what a device has received so far.
func (s *Server) Received(platform, token string) []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received[platform+":"+token]...)
}

// WaitReceived waits until a device has received at least n messages, or ctx
// ends, and returns what it received. It needs CountOnly off.
func (s *Server) WaitReceived(ctx context.Context, platform, token string, n int) ([]Received, error) {
	key := platform + ":" + token
	for {
		s.mu.Lock()
		if got := s.received[key]; len(got) >= n {
			s.mu.Unlock()
			return append([]Received(nil), got...), nil
		}
		if s.arrived == nil {
			s.arrived = make(chan struct{})
		}
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return s.Received(platform, token), fmt.Errorf("simulator: waiting for %d message(s) to %s: %w", n, platform, ctx.Err())
		}
	}
}

// Requests counts the provider requests (APNs, FCM, Web Push) that reached
// the simulator since start, whatever their answer.
func (s *Server) Requests() int64 { return s.total.Load() }

// Reset zeroes the counters (not what devices received), so that the next
// delivery counts as the first.
func (s *Server) Reset() {
	s.delivered.Store(0)
	s.first.Store(0)
}

// FirstDelivery is when the first message since start or Reset was accepted.
func (s *Server) FirstDelivery() time.Time {
	if n := s.first.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Connections counts the TCP connections clients opened since start.
func (s *Server) Connections() int64 { return s.conns.Load() }

// Delivered counts the messages accepted since start.
func (s *Server) Delivered() int64 { return s.delivered.Load() }

func (s *Server) takeFault(platform, token string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := platform + ":" + token
	f, ok := s.faults[key]
	if !ok {
		if r, ok := s.random[platform]; ok && mrand.Float64() < r.probability {
			c := r.fault
			return &c
		}
		return nil
	}
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.faults, key)
		}
	}
	c := *f
	return &c
}

// applyFault delays, drops, cuts, holds or answers for a fault; it reports
// whether the request was dealt with. accept records the request as received.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault, answer func(*Fault), accept func()) bool {
	if f == nil {
		return false
	}
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	if f.Drop {
		panic(http.ErrAbortHandler) // net/http resets the stream/connection
	}
	if f.Cut {
		accept()
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			c.Close()
		}
		panic(http.ErrAbortHandler) // nothing more is written
	}
	if f.Hang {
		accept()
		select {
		case <-r.Context().Done(): // the client reset the stream or closed the connection
		case <-s.closing:
		}
		panic(http.ErrAbortHandler)
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(f.RetryAfter.Seconds())))
	}
	answer(f)
	return true
}

func (s *Server) record(platform, token string, payload []byte, h http.Header) {
	if s.delivered.Add(1) == 1 {
		s.first.Store(s.now().UnixNano())
	}
	if s.countOnly {
		return
	}
	r := Received{Platform: platform, Token: token, Payload: payload, Header: h, At: s.now()}
	s.mu.Lock()
	s.received[platform+":"+token] = append(s.received[platform+":"+token], r)
	if s.arrived != nil {
		close(s.arrived)
		s.arrived = nil
	}
	s.mu.Unlock()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// SetLatency sets how long every provider answer is held back.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// lagged holds a provider request for the simulator's latency first. The
// wait ends early when the client gives up on the request.
func (s *Server) lagged(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				panic(http.ErrAbortHandler)
			}
		}
		h(w, r)
	}
}

// latencyHTTP sets the latency from ?ms=, for a simulator in another
// process (the benchmark's).
func (s *Server) latencyHTTP(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 || ms > 60_000 {
		http.Error(w, "ms must be 0 to 60000", http.StatusBadRequest)
		return
	}
	s.SetLatency(time.Duration(ms) * time.Millisecond)
	w.WriteHeader(http.StatusNoContent)
}
