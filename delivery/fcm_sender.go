package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
)

// FCMCredentials is a Firebase project's service account.
//
// Auth and endpoint are separate: ServiceAccountJSON (or, for tests and the
// simulator only, AccessToken) says how requests are authenticated, Endpoint
// where they go, Google's FCM when empty.
type FCMCredentials struct {
	ProjectID string `json:"project_id"`
	// ServiceAccountJSON is the service account key file from the Firebase
	// console; no other Google credential type is accepted.
	ServiceAccountJSON string `json:"service_account_json,omitempty"`
	// Endpoint points the SDK at the simulator instead of Google: the base
	// URL before /v1.
	Endpoint string `json:"endpoint,omitempty"`
	// AccessToken is a static bearer for the simulator, in place of a
	// service account; it needs Endpoint.
	AccessToken string `json:"access_token,omitempty"`
}

type fcmSender struct {
	client  *messaging.Client
	timeout time.Duration // per Send, the SDK's retries included
}

// newFCMSender builds the SDK's client over Herald's own transport, the same
// whatever the credentials: transport (its TLS roots and connection pool)
// under fcmGuard, under the auth layer. The SDK is given the finished
// client (option.WithHTTPClient) and builds no transport of its own.
func newFCMSender(ctx context.Context, c *FCMCredentials, roots *x509.CertPool, transport http.RoundTripper, timeout time.Duration) (*fcmSender, error) {
	if c.ProjectID == "" {
		return nil, errors.New("delivery: fcm credentials need project_id")
	}
	base := transport
	if base == nil {
		base = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 256}
	}
	guarded := &fcmGuard{next: base}
	var rt http.RoundTripper
	switch {
	case c.ServiceAccountJSON != "" && c.AccessToken != "":
		return nil, errors.New("delivery: fcm credentials take service_account_json or access_token, not both")
	case c.ServiceAccountJSON != "":
		var err error
		if rt, err = serviceAccountTransport(ctx, []byte(c.ServiceAccountJSON), guarded, base); err != nil {
			return nil, fmt.Errorf("delivery: %w", err)
		}
	case c.AccessToken != "":
		if c.Endpoint == "" {
			return nil, errors.New("delivery: fcm access_token is for a test endpoint and needs endpoint")
		}
		ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: c.AccessToken, TokenType: "Bearer"})
		rt = &oauth2.Transport{Source: ts, Base: guarded}
	default:
		return nil, errors.New("delivery: fcm credentials need service_account_json")
	}
	opts := []option.ClientOption{option.WithHTTPClient(&http.Client{Transport: rt})}
	if c.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(strings.TrimRight(c.Endpoint, "/")+"/v1"))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: c.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("delivery: firebase app: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("delivery: firebase messaging: %w", err)
	}
	return &fcmSender{client: client, timeout: timeout}, nil
}

// RenderFCM is the FCM message for m without a token; send copies it per device.
func RenderFCM(m *Message) *messaging.Message {
	ttl := m.ttl()
	data := make(map[string]string, len(m.Data)+1)
	for k, v := range m.Data {
		data[k] = v
	}
	if m.URL != "" {
		data["url"] = m.URL
	}
	priority, urgency := "normal", "normal"
	if m.Priority == PriorityHigh {
		priority, urgency = "high", "high"
	}
	msg := &messaging.Message{
		Notification: &messaging.Notification{Title: m.Title, Body: m.Body, ImageURL: m.ImageURL},
		Data:         data,
		Android: &messaging.AndroidConfig{
			TTL: &ttl, CollapseKey: m.CollapseKey, Priority: priority,
			Notification: &messaging.AndroidNotification{ClickAction: m.Category, Tag: m.CollapseKey},
		},
		Webpush: &messaging.WebpushConfig{
			Headers:    map[string]string{"TTL": fmt.Sprint(int(ttl.Seconds())), "Urgency": urgency},
			FCMOptions: webpushLink(m.URL),
		},
	}
	if m.CollapseKey != "" {
		// An FCM token may be an iPhone's or a browser's as well as an
		// Android phone's: each gets its platform's replace-the-earlier-one
		// key, so that a resend shows once everywhere.
		if len(m.CollapseKey) <= 64 {
			msg.APNS = &messaging.APNSConfig{Headers: map[string]string{"apns-collapse-id": m.CollapseKey}}
		}
		msg.Webpush.Headers["Topic"] = webPushTopic(m.CollapseKey)
		msg.Webpush.Notification = &messaging.WebpushNotification{Tag: m.CollapseKey}
	}
	return msg
}

func webpushLink(u string) *messaging.WebpushFCMOptions {
	if !strings.HasPrefix(u, "https://") {
		return nil // FCM accepts only https links here
	}
	return &messaging.WebpushFCMOptions{Link: u}
}

func (s *fcmSender) send(ctx context.Context, tmpl *messaging.Message, d *Device) Outcome {
	msg := *tmpl
	msg.Token = d.Token
	out := Outcome{DeviceID: d.ID, Platform: PlatformFCM}
	reqCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	reqCtx, trace := withSendTrace(reqCtx)
	id, err := s.client.Send(reqCtx, &msg)
	switch {
	case err == nil:
		out.Class, out.ProviderID = ClassDelivered, id
		return out
	case trace.held:
		// fcmGuard answered in place of the network: an attempt was written
		// whole and got no answer, so the provider may have it. Classed by
		// that attempt's error, never by the guard's synthetic status.
		out.Class, out.Reason = ClassUnknown, unknownReason(ctx, reqCtx, trace.heldErr)
		return out
	case errorutils.HTTPResponse(err) == nil:
		// No HTTP status: a network error, a timeout or a cancel, perhaps
		// after the SDK resent attempts that wrote nothing (fcmGuard holds
		// the others), so every attempt counts.
		out.Class, out.Reason = trace.transportClass(ctx, reqCtx, err, true)
		return out
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err):
		out.Class = ClassDeviceGone
	case messaging.IsInvalidArgument(err) && strings.Contains(strings.ToLower(err.Error()), "token"):
		// INVALID_ARGUMENT names the registration token when it is malformed.
		out.Class = ClassDeviceGone
	case messaging.IsInvalidArgument(err):
		out.Class = ClassRejected
	case messaging.IsQuotaExceeded(err):
		out.Class, out.RetryAfter = ClassThrottled, quotaRetryAfter(errorutils.HTTPResponse(err))
	case messaging.IsThirdPartyAuthError(err), errorutils.IsUnauthenticated(err), errorutils.IsPermissionDenied(err):
		out.Class = ClassConfigError
	default: // 500, or 503 after the SDK's retries
		out.Class = ClassRetryable
	}
	out.Reason = err.Error()
	return out
}

// defaultQuotaRetryAfter is the wait after an FCM 429 that names none.
const defaultQuotaRetryAfter = time.Minute

// quotaRetryAfter is how long FCM's 429 answer resp asks senders to wait
// (Retry-After, in seconds or as a date), or defaultQuotaRetryAfter when it
// says nothing usable. A zero or past Retry-After counts as nothing: a quota
// that ran out is not back at once.
func quotaRetryAfter(resp *http.Response) time.Duration {
	if resp != nil {
		if d := parseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
			return d
		}
	}
	return defaultQuotaRetryAfter
}
