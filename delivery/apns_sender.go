package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

// APNsCredentials is an APNs token-based (.p8) signing key.
type APNsCredentials struct {
	KeyP8  string `json:"key_p8"` // PEM "PRIVATE KEY" from the .p8 file
	KeyID  string `json:"key_id"`
	TeamID string `json:"team_id"`
	// Topic is the default bundle id, used when a device has none.
	Topic string `json:"topic"`
	// Endpoint replaces Apple's hosts (production at Endpoint, sandbox at
	// Endpoint+"/sandbox"); it points at the simulator in development.
	Endpoint string `json:"endpoint,omitempty"`
}

type apnsSender struct {
	production, sandbox *apns2.Client
	topic               string
	timeout             time.Duration // per request; apns2's own 60 s is a backstop
}

func newAPNsSender(c *APNsCredentials, roots *x509.CertPool, timeout time.Duration) (*apnsSender, error) {
	key, err := token.AuthKeyFromBytes([]byte(c.KeyP8))
	if err != nil {
		return nil, fmt.Errorf("delivery: apns key: %w", err)
	}
	if c.KeyID == "" || c.TeamID == "" {
		return nil, fmt.Errorf("delivery: apns credentials need key_id and team_id")
	}
	// One token (and so one cached JWT) shared by both environments' clients.
	tok := &token.Token{AuthKey: key, KeyID: c.KeyID, TeamID: c.TeamID}
	mk := func(host string) *apns2.Client {
		client := apns2.NewTokenClient(tok)
		client.Host = host
		if t, ok := client.HTTPClient.Transport.(*http2.Transport); ok {
			// The http2 transport opens another connection when one reaches
			// the server's stream limit (StrictMaxConcurrentStreams is off).
			t.TLSClientConfig = &tls.Config{RootCAs: roots}
			t.ReadIdleTimeout = 30 * time.Second
			// apns2's DialTLS ignores the request's context: a caller who
			// cancels would wait out a hanging connect (TLSDialTimeout).
			t.DialTLS = nil
			t.DialTLSContext = dialTLSContext
		}
		return client
	}
	s := &apnsSender{topic: c.Topic, timeout: timeout}
	if c.Endpoint != "" {
		s.production, s.sandbox = mk(c.Endpoint), mk(strings.TrimRight(c.Endpoint, "/")+"/sandbox")
	} else {
		s.production, s.sandbox = mk(apns2.HostProduction), mk(apns2.HostDevelopment)
	}
	return s, nil
}

// dialTLSContext is apns2.DialTLS (same timeout and keep-alive) that stops
// when ctx ends.
func dialTLSContext(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: apns2.TLSDialTimeout, KeepAlive: apns2.TCPKeepAlive}, Config: cfg}
	return d.DialContext(ctx, network, addr)
}

// RenderAPNs is the JSON payload sent to APNs for m.
func RenderAPNs(m *Message) ([]byte, error) {
	p := payload.NewPayload().AlertTitle(m.Title).AlertBody(m.Body).Sound("default")
	if m.ImageURL != "" {
		// A notification service extension downloads the image.
		p.MutableContent().Custom("image", m.ImageURL)
	}
	if m.Category != "" {
		p.Category(m.Category)
	}
	if m.CollapseKey != "" {
		p.ThreadID(m.CollapseKey)
	}
	if m.URL != "" {
		p.Custom("url", m.URL)
	}
	if len(m.Actions) > 0 {
		p.Custom("actions", m.Actions)
	}
	for k, v := range m.Data {
		if k != "aps" {
			p.Custom(k, v)
		}
	}
	b, err := p.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("delivery: render apns: %w", err)
	}
	if len(b) > 4096 {
		return nil, fmt.Errorf("%w: apns payload is %d bytes, at most 4096", ErrPayloadTooLarge, len(b))
	}
	return b, nil
}

func (s *apnsSender) send(ctx context.Context, body []byte, m *Message, d *Device) Outcome {
	n := &apns2.Notification{
		DeviceToken: d.Token,
		Topic:       d.APNsTopic,
		Payload:     body,
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityLow,
		Expiration:  time.Now().Add(m.ttl()),
	}
	if n.Topic == "" {
		n.Topic = s.topic
	}
	if m.Priority == PriorityHigh {
		n.Priority = apns2.PriorityHigh
	}
	if len(m.CollapseKey) <= 64 {
		n.CollapseID = m.CollapseKey
	}
	client, other := s.production, s.sandbox
	if d.APNsSandbox {
		client, other = s.sandbox, s.production
	}
	out := s.push(ctx, client, n, d)
	if out.Class == ClassDeviceGone && out.Reason == apns2.ReasonBadDeviceToken {
		// A token registered with the wrong environment looks bad to the
		// other host; only when both say so is it really gone.
		if ctx.Err() != nil {
			// No request starts after the context ended. The first host
			// refused the message, so no provider holds it.
			out.Class = ClassNotSent
			out.Reason = "not sent: " + apns2.ReasonBadDeviceToken + " and the other environment was not tried: " + transportCause(ctx, ctx, ctx.Err())
			return out
		}
		if again := s.push(ctx, other, n, d); again.Class != ClassDeviceGone || again.Reason != apns2.ReasonBadDeviceToken {
			again.Reason = strings.TrimSpace(again.Reason + " (environment mismatch)")
			return again
		}
	}
	return out
}

func (s *apnsSender) push(ctx context.Context, client *apns2.Client, n *apns2.Notification, d *Device) Outcome {
	out := Outcome{DeviceID: d.ID, Platform: PlatformAPNs}
	reqCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	reqCtx, trace := withSendTrace(reqCtx)
	res, err := client.PushWithContext(reqCtx, n)
	if err != nil {
		// No status: apns2 returns a response for every HTTP answer.
		out.Class, out.Reason = trace.transportClass(ctx, reqCtx, err, false)
		return out
	}
	out.StatusCode, out.Reason = res.StatusCode, res.Reason
	switch {
	case res.StatusCode == http.StatusOK:
		out.Class, out.ProviderID = ClassDelivered, res.ApnsID
	case res.StatusCode == http.StatusGone,
		res.Reason == apns2.ReasonBadDeviceToken, res.Reason == apns2.ReasonExpiredToken, res.Reason == apns2.ReasonUnregistered:
		out.Class = ClassDeviceGone
	case res.StatusCode == http.StatusTooManyRequests:
		out.Class, out.RetryAfter = ClassThrottled, 5*time.Second
	case res.StatusCode == http.StatusForbidden && res.Reason != apns2.ReasonExpiredProviderToken:
		// InvalidProviderToken, MissingProviderToken, BadCertificate...
		out.Class = ClassConfigError
	case res.StatusCode >= 500, res.Reason == apns2.ReasonExpiredProviderToken:
		out.Class = ClassRetryable
	default: // PayloadTooLarge, BadTopic, DeviceTokenNotForTopic, BadCollapseId...
		out.Class = ClassRejected
	}
	return out
}
