package delivery

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// webPushPadTo pads plaintexts to a multiple of 64 bytes: enough to blur the
// length of short texts without webpush-go's fixed 4 KiB on every message.
const webPushPadTo = 64

type webPushSender struct {
	signer  *vapidSigner
	client  *http.Client
	timeout time.Duration // per request
	policy  *EndpointPolicy
}

// webPushPayload is the JSON the service worker receives (web/static/sw.js).
type webPushPayload struct {
	Title   string            `json:"title"`
	Body    string            `json:"body,omitempty"`
	Image   string            `json:"image,omitempty"`
	URL     string            `json:"url,omitempty"`
	Tag     string            `json:"tag,omitempty"`
	Actions []Action          `json:"actions,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
}

// RenderWebPush is the plaintext a browser's service worker receives.
func RenderWebPush(m *Message) ([]byte, error) {
	b, err := json.Marshal(webPushPayload{
		Title: m.Title, Body: m.Body, Image: m.ImageURL, URL: m.URL, Tag: m.CollapseKey, Actions: m.Actions, Data: m.Data,
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: render web push: %w", err)
	}
	if len(b) > WebPushMaxPlaintext {
		return nil, fmt.Errorf("%w: web push payload is %d bytes, at most %d", ErrPayloadTooLarge, len(b), WebPushMaxPlaintext)
	}
	return b, nil
}

var topicRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// webPushTopic maps a collapse key onto the Topic header's alphabet (RFC 8030
// section 5.4: at most 32 base64url characters).
func webPushTopic(key string) string {
	if key == "" || topicRE.MatchString(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:32]
}

func (w *webPushSender) send(ctx context.Context, plaintext []byte, m *Message, d *Device) Outcome {
	out := Outcome{DeviceID: d.ID, Platform: PlatformWebPush}
	p256dh, err1 := decodeB64(d.P256dh)
	auth, err2 := decodeB64(d.Auth)
	u, err3 := url.Parse(d.Token)
	if err1 != nil || err2 != nil || err3 != nil || u.Scheme != "https" && u.Scheme != "http" {
		out.Class, out.Reason = ClassDeviceGone, "subscription is malformed"
		return out
	}
	if w.policy != nil {
		// Also for subscriptions stored before the policy, or under a wider
		// one: such a device can never be sent to, so it is gone.
		if err := w.policy.CheckURL(d.Token); err != nil {
			out.Class, out.Reason = ClassDeviceGone, err.Error()
			return out
		}
	}
	asPrivate, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		out.Class, out.Reason = ClassRetryable, err.Error()
		return out
	}
	var salt [16]byte
	rand.Read(salt[:])
	body, err := EncryptWebPush(plaintext, WebPushKeys{P256dh: p256dh, Auth: auth}, asPrivate, salt[:], webPushPadTo)
	if err != nil {
		out.Class, out.Reason = ClassDeviceGone, err.Error()
		if isErr(err, ErrPayloadTooLarge) {
			out.Class = ClassRejected
		}
		return out
	}
	authz, err := w.signer.authorization(u.Scheme + "://" + u.Host)
	if err != nil {
		out.Class, out.Reason = ClassConfigError, err.Error()
		return out
	}
	reqCtx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	reqCtx, trace := withSendTrace(reqCtx)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, d.Token, bytes.NewReader(body))
	if err != nil {
		out.Class, out.Reason = ClassDeviceGone, "endpoint is not a URL"
		return out
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", strconv.Itoa(int(m.ttl().Seconds())))
	if m.Priority == PriorityHigh {
		req.Header.Set("Urgency", "high")
	} else {
		req.Header.Set("Urgency", "normal")
	}
	if t := webPushTopic(m.CollapseKey); t != "" {
		req.Header.Set("Topic", t)
	}
	resp, err := w.client.Do(req)
	if errors.Is(err, ErrEndpointRefused) {
		// The name resolved to an address inside a private network.
		out.Class, out.Reason = ClassDeviceGone, refusedReason(err)
		return out
	}
	if err != nil {
		out.Class, out.Reason = trace.transportClass(ctx, reqCtx, err, false)
		return out
	}
	reason, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	out.StatusCode = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		out.Class, out.ProviderID = ClassDelivered, resp.Header.Get("Location")
		return out
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		out.Class = ClassDeviceGone
	case resp.StatusCode == http.StatusTooManyRequests:
		out.Class, out.RetryAfter = ClassThrottled, parseRetryAfter(resp.Header.Get("Retry-After"))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The push service refused our VAPID credentials.
		out.Class = ClassConfigError
	case resp.StatusCode >= 500:
		out.Class = ClassRetryable
	default: // 400, 413 and the like: this message will never be accepted.
		out.Class = ClassRejected
	}
	out.Reason = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(reason))
	return out
}

// refusedReason is the policy's own words for a refused connection, without
// the URL around them (it holds the subscription's endpoint).
func refusedReason(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.HasPrefix(e.Error(), ErrEndpointRefused.Error()) {
			return e.Error()
		}
	}
	return ErrEndpointRefused.Error()
}
