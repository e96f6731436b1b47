package simulator

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// derivedPrefix marks subscription ids whose keys derive from the secret.
const derivedPrefix = "d."

// DerivedWebPushSubscription returns the subscription named seed, whose keys
// derive from the simulator's Secret: the same seed gives the same
// subscription after a restart. It needs Config.Secret.
func (s *Server) DerivedWebPushSubscription(seed string) (WebPushSubscription, bool) {
	sub, ok := s.derive(derivedPrefix + seed)
	if !ok {
		return WebPushSubscription{}, false
	}
	return WebPushSubscription{
		Endpoint: s.URL + "/wp/" + derivedPrefix + seed,
		P256dh:   base64.RawURLEncoding.EncodeToString(sub.private.PublicKey().Bytes()),
		Auth:     base64.RawURLEncoding.EncodeToString(sub.auth),
	}, true
}

// derive rebuilds a derived subscription from its id and remembers it.
func (s *Server) derive(id string) (*subscription, bool) {
	if len(s.secret) == 0 || !strings.HasPrefix(id, derivedPrefix) {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub, ok := s.webpush[id]; ok {
		return sub, true
	}
	sub := deriveSubscription(s.secret, id)
	s.webpush[id] = sub
	return sub, true
}

// DerivedSubscription is DerivedWebPushSubscription for a simulator running
// elsewhere (another process) at baseURL with the same secret.
func DerivedSubscription(secret []byte, baseURL, seed string) WebPushSubscription {
	sub := deriveSubscription(secret, derivedPrefix+seed)
	return WebPushSubscription{
		Endpoint: baseURL + "/wp/" + derivedPrefix + seed,
		P256dh:   base64.RawURLEncoding.EncodeToString(sub.private.PublicKey().Bytes()),
		Auth:     base64.RawURLEncoding.EncodeToString(sub.auth),
	}
}

func deriveSubscription(secret []byte, id string) *subscription {
	mac := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label + id))
		return m.Sum(nil)
	}
	var priv *ecdh.PrivateKey
	for i := 0; priv == nil; i++ {
		k, err := ecdh.P256().NewPrivateKey(mac(string(rune('a' + i))))
		if err == nil {
			priv = k
		}
	}
	return &subscription{private: priv, auth: mac("auth")[:16]}
}
