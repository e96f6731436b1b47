package delivery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// vapidLifetime is how long a VAPID JWT is valid; RFC 8292 allows up to 24h.
const vapidLifetime = 12 * time.Hour

// vapidRenewBefore renews a cached JWT this long before it expires, so no
// request carries a token that expires in flight.
const vapidRenewBefore = time.Hour

// VAPIDKeys is an application server key pair (RFC 8292) as base64url: the
// 32-byte private scalar and the 65-byte uncompressed public point, the format
// webpush-go's GenerateVAPIDKeys produces and browsers' applicationServerKey
// takes.
type VAPIDKeys struct {
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key"`
	// Subject is a mailto: or https: contact for the push service operator.
	Subject string `json:"subject"`
}

// vapidSigner signs one JWT per push-service origin and reuses it until
// shortly before it expires: webpush-go re-derives the key and re-signs on
// every message, which is about half of its CPU cost.
type vapidSigner struct {
	key     *ecdsa.PrivateKey
	pubB64  string
	subject string
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]vapidToken
}

type vapidToken struct {
	header  string
	expires time.Time
}

func newVAPIDSigner(keys *VAPIDKeys, now func() time.Time) (*vapidSigner, error) {
	d, err := base64.RawURLEncoding.DecodeString(trimPad(keys.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("delivery: vapid private key is not base64url: %w", err)
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return nil, fmt.Errorf("delivery: vapid private key: %w", err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("delivery: vapid public key: %w", err)
	}
	return &vapidSigner{
		key: key, pubB64: base64.RawURLEncoding.EncodeToString(pub), subject: keys.Subject,
		now: now, cache: map[string]vapidToken{},
	}, nil
}

// authorization returns the Authorization header value for a push service
// origin such as "https://fcm.googleapis.com".
func (s *vapidSigner) authorization(origin string) (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.cache[origin]; ok && now.Before(t.expires.Add(-vapidRenewBefore)) {
		return t.header, nil
	}
	exp := now.Add(vapidLifetime)
	signed, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"aud": origin, "exp": exp.Unix(), "sub": s.subject,
	}).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("delivery: sign vapid jwt: %w", err)
	}
	header := "vapid t=" + signed + ", k=" + s.pubB64
	s.cache[origin] = vapidToken{header: header, expires: exp}
	return header, nil
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}

// decodeB64 accepts base64url with or without padding, and standard base64,
// because browsers and SDKs hand out all three.
func decodeB64(s string) ([]byte, error) {
	s = trimPad(s)
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// ValidateWebPushKeys checks that a subscription's keys are usable.
func ValidateWebPushKeys(p256dh, auth string) error {
	pub, err := decodeB64(p256dh)
	if err != nil {
		return fmt.Errorf("%w: p256dh is not base64url", ErrBadSubscription)
	}
	if _, err := ecdhP256PublicKey(pub); err != nil {
		return fmt.Errorf("%w: p256dh is not a P-256 public key", ErrBadSubscription)
	}
	a, err := decodeB64(auth)
	if err != nil || len(a) != 16 {
		return fmt.Errorf("%w: auth must be 16 bytes of base64url", ErrBadSubscription)
	}
	return nil
}
