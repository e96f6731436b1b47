package delivery

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
)

// fcmGuard is the RoundTripper right above the network under the FCM SDK's
// HTTP client (and under its auth layer). The SDK resends a request on its
// own after any network error, up to four times with 0, 1, 2 and 4 s of
// backoff, even when the failed attempt was written whole and the provider
// may have accepted it; a cut connection then shows the message up to five
// times. Its retry settings are internal, so the guard decides instead.
//
// For a request whose context carries a sendTrace (every FCM send does):
//   - After an attempt that ended in a network error, if the trace shows an
//     attempt of this send written whole with no response byte (the
//     attempt itself, or one the transport retried inside it), the guard
//     answers with heldResponse in place of the error. The SDK retries
//     network errors and 503 only, so it neither resends nor waits out its
//     backoff, and returns at once.
//   - Before an attempt, if the trace already shows such an attempt, the
//     guard does not send and answers heldResponse. The first rule leaves
//     the SDK no reason to try again; this one holds whatever it tries.
//
// Either way it marks the trace held, so that fcmSender classes the send
// ClassUnknown from the network error, not the synthetic answer. Everything
// else passes through untouched: 503 answers and attempts that wrote nothing
// (refused connections, DNS, TLS) are still retried by the SDK, since the
// provider cannot have them.
type fcmGuard struct {
	next http.RoundTripper
}

// errEarlierUnanswered stands for the network error of a held send when the
// attempt that may have reached the provider was retried inside the
// transport, whose error the guard never saw.
var errEarlierUnanswered = errors.New("an earlier attempt was sent and got no answer")

// RoundTrip sends req unless an earlier attempt of its send may have reached
// the provider, and answers in place of a network error after which the
// provider may have the request; see fcmGuard.
func (g *fcmGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	t := sendTraceFrom(req.Context())
	if t == nil {
		return g.next.RoundTrip(req)
	}
	if t.unanswered(t.lastErr, true) {
		if req.Body != nil {
			req.Body.Close() // RoundTrip owns it, sent or not
		}
		heldErr := t.lastErr
		if heldErr == nil {
			heldErr = errEarlierUnanswered
		}
		t.held, t.heldErr = true, heldErr
		return heldResponse(req), nil
	}
	resp, err := g.next.RoundTrip(req)
	t.lastErr = err // nil after an answer: the next attempt follows that
	if err == nil {
		return resp, nil
	}
	if !t.unanswered(err, true) {
		return nil, err
	}
	t.held, t.heldErr = true, err
	return heldResponse(req), nil
}

// heldResponse is the guard's answer for a request it will not let the SDK
// send again: 409 ABORTED in Google's error format. The SDK retries only
// network errors and 503, so it stops here; fcmSender recognises the send by
// its trace, never by this status (not among the errors FCM documents).
func heldResponse(req *http.Request) *http.Response {
	return syntheticResponse(req, http.StatusConflict, "ABORTED",
		"herald: not sent again: an earlier attempt was sent whole and got no answer")
}

// syntheticResponse is an answer in Google's JSON error format that no
// server sent, for the SDK to turn into a FirebaseError without a retry.
func syntheticResponse(req *http.Request, code int, status, message string) *http.Response {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "status": status, "message": message}})
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", code, http.StatusText(code)),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// fcmScopes are what a Firebase service account's access token is asked for,
// as the SDK asks them.
var fcmScopes = []string{
	"https://www.googleapis.com/auth/firebase.messaging",
	"https://www.googleapis.com/auth/cloud-platform",
}

// serviceAccountTransport authenticates requests with a service account's
// OAuth2 access tokens and sends them over next; token requests go over
// tokenBase.
//
// The credentials are built here, pinned to the service_account type, rather
// than by option.WithAuthCredentialsJSON(option.ServiceAccount, ...): with
// google.golang.org/api v0.311.0 that option takes the new auth library's
// path, which ignores the type and would load an external_account or
// authorized_user JSON (which can read local files or call other endpoints)
// from an admin upload.
func serviceAccountTransport(ctx context.Context, saJSON []byte, next, tokenBase http.RoundTripper) (http.RoundTripper, error) {
	creds, err := credentials.NewCredentialsFromJSON(credentials.ServiceAccount, saJSON, &credentials.DetectOptions{
		Scopes: fcmScopes,
		Client: &http.Client{Transport: detachedTransport{tokenBase}, Timeout: tokenTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("fcm service account: %w", err)
	}
	var sa struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(saJSON, &sa); err != nil {
		return nil, fmt.Errorf("fcm service account: %w", err)
	}
	// Checked now: the auth library parses the key only when it first needs
	// a token, and a bad key would then fail every send as a network error.
	if err := checkRSAKey(sa.PrivateKey); err != nil {
		return nil, fmt.Errorf("fcm service account: %w", err)
	}
	// Telemetry off: Herald has no OpenTelemetry, and the layer costs
	// allocations on every send.
	rt, err := htransport.NewTransport(ctx, next, option.WithAuthCredentials(creds), option.WithTelemetryDisabled())
	if err != nil {
		return nil, fmt.Errorf("fcm service account transport: %w", err)
	}
	return &tokenRefusal{next: rt}, nil
}

// tokenTimeout bounds a token request, which the auth library also makes in
// the background (under context.Background) when a token is about to expire.
const tokenTimeout = 30 * time.Second

// checkRSAKey reports whether pemText is an RSA private key, as a service
// account's private_key is, in PKCS #8 or PKCS #1. Its errors say nothing of
// the key.
func checkRSAKey(pemText string) error {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return errors.New("private_key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return errors.New("private_key is not a PKCS #8 or PKCS #1 private key")
		}
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return errors.New("private_key is not an RSA key")
	}
	return nil
}

// detachedTransport sends token requests under a context with the caller's
// deadline and cancellation but none of its values. The auth library fetches
// a token with the context of the FCM request that needs it, which carries
// that send's sendTrace: the token request's hooks would count as an attempt
// of the send, and a token request cut after writing would make fcmGuard hold
// a send FCM never saw.
type detachedTransport struct {
	next http.RoundTripper
}

// RoundTrip sends req over the next transport without its context's values.
func (d detachedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return d.next.RoundTrip(req.WithContext(valuesHidden{req.Context()}))
}

// valuesHidden is its Context's deadline and cancellation without its values.
type valuesHidden struct {
	context.Context
}

// Value is always nil: no value of the parent shows through.
func (valuesHidden) Value(any) any { return nil }

// tokenRefusal turns the token endpoint refusing the service account (a 4xx
// other than 408 and 429: invalid_grant for a wrong or deleted key,
// invalid_client...) into a 401 UNAUTHENTICATED answer. The auth layer
// reports it as an error with no response, which the SDK would take for a
// network error and retry four times over 7 s, each asking for a token
// again; as an answer it is not retried, and fcmSender classes it
// ClassConfigError like FCM's own 401. Temporary token failures (5xx, 408,
// 429, the network) stay errors: FCM got nothing, so the SDK's retry is safe.
type tokenRefusal struct {
	next http.RoundTripper
}

// RoundTrip sends req, answering 401 in place of a token refusal.
func (r *tokenRefusal) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	var ae *auth.Error
	if err == nil || !errors.As(err, &ae) || ae.Response == nil {
		return resp, err
	}
	code := ae.Response.StatusCode
	if code < 400 || code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests {
		return resp, err
	}
	return syntheticResponse(req, http.StatusUnauthorized, "UNAUTHENTICATED", tokenRefusalReason(code, ae.Body)), nil
}

// tokenRefusalReason says why the token endpoint refused, from its OAuth2
// error response (RFC 6749 section 5.2): the status, error code and
// description, cut short, and never the rest of the body.
func tokenRefusalReason(code int, body []byte) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(body, &e) // a body that is not JSON leaves the status alone
	reason := fmt.Sprintf("the token endpoint refused the service account: %d", code)
	if e.Error != "" {
		reason += " " + truncate(e.Error, 64)
	}
	if e.Description != "" {
		reason += " (" + truncate(e.Description, 200) + ")"
	}
	return reason
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
