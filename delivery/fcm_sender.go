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
type FCMCredentials struct {
	ProjectID          string `json:"project_id"`
	ServiceAccountJSON string `json:"service_account_json,omitempty"`
	// Endpoint and AccessToken point the SDK at the simulator instead of
	// Google: Endpoint is the base URL before /v1, AccessToken a static bearer.
	Endpoint    string `json:"endpoint,omitempty"`
	AccessToken string `json:"access_token,omitempty"`
}

type fcmSender struct {
	client  *messaging.Client
	timeout time.Duration // per Send, the SDK's retries included
}

func newFCMSender(ctx context.Context, c *FCMCredentials, roots *x509.CertPool, transport http.RoundTripper, timeout time.Duration) (*fcmSender, error) {
	if c.ProjectID == "" {
		return nil, errors.New("delivery: fcm credentials need project_id")
	}
	var opts []option.ClientOption
	switch {
	case c.Endpoint != "":
		base := transport
		if base == nil {
			base = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 256}
		}
		ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: c.AccessToken, TokenType: "Bearer"})
		opts = append(opts,
			option.WithEndpoint(strings.TrimRight(c.Endpoint, "/")+"/v1"),
			option.WithHTTPClient(&http.Client{Transport: &oauth2.Transport{Source: ts, Base: base}}))
	case c.ServiceAccountJSON != "":
		// Pinned to a service account: the JSON comes from an admin upload, and
		// other credential types could make the SDK read files or call out.
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, []byte(c.ServiceAccountJSON)))
	default:
		return nil, errors.New("delivery: fcm credentials need service_account_json")
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
	return &messaging.Message{
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
	case errorutils.HTTPResponse(err) == nil:
		// No HTTP status: a network error, a timeout or a cancel, perhaps
		// after the SDK resent the request (it does after network errors
		// and 503), so every attempt counts.
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
		out.Class, out.RetryAfter = ClassThrottled, time.Minute
	case messaging.IsThirdPartyAuthError(err), errorutils.IsUnauthenticated(err), errorutils.IsPermissionDenied(err):
		out.Class = ClassConfigError
	default: // 500, or 503 after the SDK's retries
		out.Class = ClassRetryable
	}
	out.Reason = err.Error()
	return out
}
