package optin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/herald-im/herald/secrets"
)

// Token errors; web/ shows each as its own page.
var (
	ErrTokenInvalid = errors.New("optin: link is not valid")
	ErrTokenExpired = errors.New("optin: link has expired")
	ErrTokenUsed    = errors.New("optin: link was already used")
)

type purpose byte

const (
	purposeConfirm     purpose = 1
	purposeUnsubscribe purpose = 2
	purposePreferences purpose = 3
)

// claims is what a signed link carries.
type claims struct {
	purpose      purpose
	subscriberID int64
	listID       int64 // 0 for every list
	expires      time.Time
}

const (
	payloadLen = 1 + 1 + 8 + 8 + 8 + 16 // version, purpose, ids, expiry, nonce
	macLen     = 16
)

// signer makes and checks signed links with one derived key per purpose.
type signer struct {
	keys map[purpose][]byte
}

func newSigner(master []byte) *signer {
	return &signer{keys: map[purpose][]byte{
		purposeConfirm:     secrets.Derive(master, "optin/confirm"),
		purposeUnsubscribe: secrets.Derive(master, "optin/unsubscribe"),
		purposePreferences: secrets.Derive(master, "optin/preferences"),
	}}
}

func (s *signer) sign(c claims) string {
	b := make([]byte, payloadLen, payloadLen+macLen)
	b[0] = 1
	b[1] = byte(c.purpose)
	binary.BigEndian.PutUint64(b[2:], uint64(c.subscriberID))
	binary.BigEndian.PutUint64(b[10:], uint64(c.listID))
	binary.BigEndian.PutUint64(b[18:], uint64(c.expires.Unix()))
	rand.Read(b[26:])
	m := hmac.New(sha256.New, s.keys[c.purpose])
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(b)[:payloadLen+macLen])
}

func (s *signer) verify(token string, want purpose, now time.Time) (claims, error) {
	if len(token) > 100 {
		return claims{}, ErrTokenInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != payloadLen+macLen || b[0] != 1 || purpose(b[1]) != want {
		return claims{}, ErrTokenInvalid
	}
	m := hmac.New(sha256.New, s.keys[want])
	m.Write(b[:payloadLen])
	if !hmac.Equal(m.Sum(nil)[:macLen], b[payloadLen:]) {
		return claims{}, ErrTokenInvalid
	}
	c := claims{
		purpose:      want,
		subscriberID: int64(binary.BigEndian.Uint64(b[2:])),
		listID:       int64(binary.BigEndian.Uint64(b[10:])),
		expires:      time.Unix(int64(binary.BigEndian.Uint64(b[18:])), 0),
	}
	if !now.Before(c.expires) {
		return c, ErrTokenExpired
	}
	return c, nil
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
