package conversations

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// SessionPrefix starts every subscriber conversation token.
const SessionPrefix = "cs_"

// SessionTTL is how long a subscriber's conversation token works.
const SessionTTL = 12 * time.Hour

// SessionToken is what a subscriber's app or widget authenticates its
// conversation calls with, once it proved who they are (an identity HMAC
// or a subscriber token, checked by the caller). It is signed, names the
// subscriber and the app, and expires after SessionTTL; nothing is stored.
func (s *Service) SessionToken(subscriberID, appID int64) (string, time.Time) {
	expires := s.now().Add(SessionTTL).Truncate(time.Second)
	payload := binary.AppendUvarint(nil, uint64(subscriberID))
	payload = binary.AppendUvarint(payload, uint64(appID))
	payload = binary.AppendUvarint(payload, uint64(expires.Unix()))
	mac := hmac.New(sha256.New, s.receiptKey)
	mac.Write([]byte("session"))
	mac.Write(payload)
	return SessionPrefix + base64.RawURLEncoding.EncodeToString(append(payload, mac.Sum(nil)[:16]...)), expires
}

// VerifySession returns the subscriber and app a conversation token names.
// Forged, malformed and expired tokens get ErrBadToken.
func (s *Service) VerifySession(token string) (subscriberID, appID int64, err error) {
	raw, ok := strings.CutPrefix(token, SessionPrefix)
	if !ok || len(token) > 120 {
		return 0, 0, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < 19 {
		return 0, 0, ErrBadToken
	}
	payload, sum := b[:len(b)-16], b[len(b)-16:]
	mac := hmac.New(sha256.New, s.receiptKey)
	mac.Write([]byte("session"))
	mac.Write(payload)
	if !hmac.Equal(mac.Sum(nil)[:16], sum) {
		return 0, 0, ErrBadToken
	}
	var vals [3]uint64
	off := 0
	for i := range vals {
		v, n := binary.Uvarint(payload[off:])
		if n <= 0 {
			return 0, 0, ErrBadToken
		}
		vals[i], off = v, off+n
	}
	if off != len(payload) || s.now().Unix() > int64(vals[2]) {
		return 0, 0, ErrBadToken
	}
	return int64(vals[0]), int64(vals[1]), nil
}
