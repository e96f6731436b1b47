package delivery_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

// These tests drive the firebase SDK itself against the simulator: its
// HTTPClient resends after network errors and 503s on its own, and Herald's
// transport decides which of those resends may go out.

// fcmDevice mints an FCM device the simulator knows.
func (b *testBundle) fcmDevice(id int64) delivery.Device {
	return delivery.Device{ID: id, Platform: delivery.PlatformFCM, Token: b.sim.NewFCMToken()}
}

// sendOne sends testMessage to d and returns its outcome.
func (b *testBundle) sendOne(d delivery.Device) delivery.Outcome {
	return b.sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
}

// TestFCMNoResendAfterWrittenAttempt: once an attempt was written whole and
// got no answer, the SDK's own retry must not send it again: the outcome is
// unknown and the provider has one copy at most.
func TestFCMNoResendAfterWrittenAttempt(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name  string
		fault simulator.Fault
		// copies is what the simulator records: Cut records the request,
		// Drop does not.
		copies int
	}{
		{"cut_after_read", simulator.Fault{Cut: true}, 1},
		{"reset_after_read", simulator.Fault{Drop: true}, 0},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			d := b.fcmDevice(1)
			b.setFault(d, f.fault)
			o := b.sendOne(d)
			wantClass(t, o, delivery.ClassUnknown, "no answer after the request was sent: ")
			if n := b.sim.Requests(); n != 1 {
				t.Fatalf("the simulator got %d request(s), want 1", n)
			}
			if n := b.received(d); n != f.copies {
				t.Fatalf("received %d copies, want %d", n, f.copies)
			}
		})
	}
	// The SDK waits 1 s before its third attempt; once the guard has decided
	// it must not hold the send through that backoff. The first attempt
	// never reaches the provider (the connection closes before TLS), the
	// second is cut after the provider read it.
	t.Run("no_backoff_after_decision", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		proxy := closeFirstProxy(t, strings.TrimPrefix(b.sim.URL, "https://"))
		sender, err := delivery.NewSender(context.Background(), withFCMEndpoint(b.creds, "https://"+proxy),
			delivery.Options{RootCAs: b.sim.CertPool()})
		if err != nil {
			t.Fatal(err)
		}
		d := b.fcmDevice(1)
		b.setFault(d, simulator.Fault{Cut: true})
		start := time.Now()
		o := sender.Send(context.Background(), testMessage, []delivery.Device{d})[0]
		elapsed := time.Since(start)
		wantClass(t, o, delivery.ClassUnknown, "no answer after the request was sent: ")
		if n := b.received(d); n != 1 {
			t.Fatalf("received %d copies, want 1", n)
		}
		if elapsed >= time.Second {
			t.Fatalf("the send took %v: it waited for the SDK's backoff", elapsed)
		}
	})
}

// TestFCMKeepsSafeRetries: the SDK still retries what the provider cannot
// have: a 503 answer, and attempts that never wrote a request.
func TestFCMKeepsSafeRetries(t *testing.T) {
	t.Parallel()
	t.Run("503_then_ok", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := b.fcmDevice(1)
		b.setFault(d, simulator.Fault{Status: 503, Reason: "UNAVAILABLE", Times: 1})
		if o := b.sendOne(d); o.Class != delivery.ClassDelivered {
			t.Fatalf("outcome %+v", o)
		}
		if n, copies := b.sim.Requests(), b.received(d); n != 2 || copies != 1 {
			t.Fatalf("%d request(s) and %d copies, want 2 and 1", n, copies)
		}
	})
	t.Run("closed_before_tls", func(t *testing.T) {
		t.Parallel()
		addr, accepted := closingListener(t)
		b := setup(t, pointAt(addr))
		d := b.unreachableDevice(delivery.PlatformFCM, addr)
		// Takes 7 s: the SDK's backoff between its five attempts.
		o := b.sendOne(d)
		wantClass(t, o, delivery.ClassRetryable, "")
		for n := range 2 {
			select {
			case <-accepted:
			case <-time.After(10 * time.Second):
				t.Fatalf("%d connection(s): the SDK did not retry an attempt that wrote nothing", n)
			}
		}
	})
}

// TestFCMQuotaRetryAfter: a 429 is throttled for as long as FCM's
// Retry-After says, or a minute without one.
func TestFCMQuotaRetryAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		retryAfter time.Duration
		want       time.Duration
	}{
		{"header_7s", 7 * time.Second, 7 * time.Second},
		{"no_header", 0, time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			d := b.fcmDevice(1)
			b.setFault(d, simulator.Fault{Status: 429, Reason: "QUOTA_EXCEEDED", RetryAfter: c.retryAfter})
			o := b.sendOne(d)
			if o.Class != delivery.ClassThrottled || o.RetryAfter != c.want {
				t.Fatalf("outcome %+v, want throttled for %v", o, c.want)
			}
		})
	}
}

// TestFCMServiceAccount sends with a service account JSON whose token_uri is
// a local OAuth2 server, through the same transport as every other send.
func TestFCMServiceAccount(t *testing.T) {
	t.Parallel()
	t.Run("delivers", func(t *testing.T) {
		t.Parallel()
		b := setupServiceAccount(t, false)
		d := b.fcmDevice(1)
		for range 2 {
			if o := b.sendOne(d); o.Class != delivery.ClassDelivered {
				t.Fatalf("outcome %+v", o)
			}
		}
		if got := b.sim.Received("fcm", d.Token); len(got) != 2 || got[0].Header.Get("Authorization") != "Bearer "+b.sim.FCMAccessToken {
			t.Fatalf("received %v", got)
		}
		// The access token is cached between sends.
		if n := b.tokens.requests.Load(); n != 1 {
			t.Fatalf("%d token request(s), want 1", n)
		}
	})
	t.Run("wrong_key", func(t *testing.T) {
		t.Parallel()
		b := setupServiceAccount(t, true)
		d := b.fcmDevice(1)
		o := b.sendOne(d)
		if o.Class != delivery.ClassConfigError || !strings.Contains(o.Reason, "invalid_grant") || strings.Contains(o.Reason, "PRIVATE KEY") {
			t.Fatalf("outcome %+v", o)
		}
		if _, broken := b.sender.Broken(delivery.PlatformFCM); !broken {
			t.Fatal("fcm not marked broken")
		}
		// Refused once, not retried by the SDK; FCM never saw a request.
		if n := b.tokens.requests.Load(); n != 1 || b.sim.Requests() != 0 {
			t.Fatalf("%d token request(s), %d FCM request(s); want 1 and 0", n, b.sim.Requests())
		}
	})
	t.Run("not_sent_while_connecting", func(t *testing.T) {
		t.Parallel()
		// The token request is made under the send's context, but it is not
		// an attempt of the send: FCM, which hangs in the TLS handshake,
		// has nothing when the caller cancels.
		addr, accepted := silentListener(t)
		b := setupServiceAccount(t, false, pointAt(addr))
		d := b.unreachableDevice(delivery.PlatformFCM, addr)
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
		if n := b.tokens.requests.Load(); n != 1 {
			t.Fatalf("%d token request(s), want 1", n)
		}
	})
	t.Run("other_credential_types", func(t *testing.T) {
		t.Parallel()
		// An admin upload may hold any Google credential JSON; only a
		// service account is accepted, before anything is fetched.
		for _, js := range []string{
			`{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}`,
			`{"type":"external_account","audience":"a","subject_token_type":"urn:ietf:params:oauth:token-type:jwt",` +
				`"token_url":"https://sts.googleapis.com/v1/token","credential_source":{"file":"/etc/hostname"}}`,
		} {
			creds := delivery.Credentials{FCM: &delivery.FCMCredentials{ProjectID: "p", ServiceAccountJSON: js}}
			if _, err := delivery.NewSender(context.Background(), creds, delivery.Options{}); !errors.Is(err, delivery.ErrConfig) {
				t.Fatalf("%.40s...: err %v, want ErrConfig", js, err)
			}
		}
	})
}

// saBundle is a testBundle whose FCM credentials are a service account.
type saBundle struct {
	*testBundle
	tokens *tokenServer
}

// setupServiceAccount starts a simulator, a token server that trusts one
// RSA key and a sender whose service account JSON points at both; with
// wrongKey the JSON holds another key than the one trusted. mods apply after.
func setupServiceAccount(t *testing.T, wrongKey bool, mods ...func(*delivery.Credentials, *delivery.Options)) *saBundle {
	t.Helper()
	trusted := rsaKey(t)
	signing := trusted
	if wrongKey {
		signing = rsaKey(t)
	}
	var tokens *tokenServer
	sa := func(c *delivery.Credentials, _ *delivery.Options) {
		tokens = startTokenServer(t, &trusted.PublicKey, c.FCM.AccessToken)
		c.FCM.ServiceAccountJSON = serviceAccountJSON(t, signing, tokens.url)
		c.FCM.AccessToken = "" // Endpoint stays: the simulator
	}
	b := setup(t, append([]func(*delivery.Credentials, *delivery.Options){sa}, mods...)...)
	return &saBundle{testBundle: b, tokens: tokens}
}

const saEmail = "herald@herald-simulator.iam.gserviceaccount.com"

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// serviceAccountJSON is the file the Firebase console hands out, with its
// token_uri replaced.
func serviceAccountJSON(t *testing.T, key *rsa.PrivateKey, tokenURI string) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "herald-simulator",
		"private_key_id": "key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   saEmail,
		"client_id":      "1234567890",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// tokenServer answers OAuth2 JWT-bearer token requests (RFC 7523) as
// Google's token endpoint does: an assertion signed by the trusted key gets
// accessToken, any other invalid_grant.
type tokenServer struct {
	url      string
	requests atomic.Int64
}

func startTokenServer(t *testing.T, trusted *rsa.PublicKey, accessToken string) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if err := ts.check(r, trusted); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": accessToken, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	ts.url = srv.URL + "/token"
	return ts
}

// check verifies a token request: a JWT-bearer grant whose assertion is
// signed by trusted, issued by the service account for this endpoint and
// asking for the FCM scope.
func (ts *tokenServer) check(r *http.Request, trusted *rsa.PublicKey) error {
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		return errors.New("not a token request")
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return errors.New("grant_type " + g)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(*jwt.Token) (any, error) { return trusted, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(saEmail), jwt.WithAudience(ts.url), jwt.WithExpirationRequired())
	if err != nil {
		return errors.New("Invalid JWT Signature.")
	}
	if tok.Header["kid"] != "key-1" {
		return errors.New("wrong key id")
	}
	if scope, _ := claims["scope"].(string); !strings.Contains(scope, "https://www.googleapis.com/auth/firebase.messaging") {
		return errors.New("scope " + scope)
	}
	return nil
}

// withFCMEndpoint is creds with FCM sent to endpoint.
func withFCMEndpoint(creds delivery.Credentials, endpoint string) delivery.Credentials {
	fcm := *creds.FCM
	fcm.Endpoint = endpoint
	creds.FCM = &fcm
	return creds
}

// closingListener accepts TCP connections and closes them at once, before
// any TLS: a client writes no request. accepted receives once per connection.
func closingListener(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ln.Addr().String(), ch
}

// closeFirstProxy listens on loopback, closes its first connection at once
// and relays later ones to target, so that a client's first attempt writes
// nothing and later ones reach target.
func closeFirstProxy(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if first {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			// Either side closing closes both.
			relay := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			wg.Go(func() { relay(up, c) })
			wg.Go(func() { relay(c, up) })
		}
	})
	return ln.Addr().String()
}
