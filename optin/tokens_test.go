package optin

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestSignerRejectsForgedExpiredAndMisusedTokens(t *testing.T) {
	t.Parallel()
	s := newSigner([]byte("a-secret-a-secret-a-secret-a-secret!"))
	now := time.Unix(1_800_000_000, 0)
	tok := s.sign(claims{purpose: purposeConfirm, subscriberID: 7, listID: 9, expires: now.Add(time.Hour)})

	c, err := s.verify(tok, purposeConfirm, now)
	if err != nil || c.subscriberID != 7 || c.listID != 9 {
		t.Fatalf("valid token: %+v %v", c, err)
	}
	if _, err := s.verify(tok, purposeConfirm, now.Add(2*time.Hour)); err != ErrTokenExpired {
		t.Errorf("expired: %v", err)
	}
	if _, err := s.verify(tok, purposeUnsubscribe, now); err != ErrTokenInvalid {
		t.Errorf("wrong purpose: %v", err)
	}
	other := newSigner([]byte("another-secret-another-secret-another"))
	if _, err := other.verify(tok, purposeConfirm, now); err != ErrTokenInvalid {
		t.Errorf("other key: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		forged := append([]byte(nil), raw...)
		forged[i] ^= 1
		if _, err := s.verify(base64.RawURLEncoding.EncodeToString(forged), purposeConfirm, now); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for _, bad := range []string{"", "x", "!!!!", tok + "A", tok[:len(tok)-1]} {
		if _, err := s.verify(bad, purposeConfirm, now); err != ErrTokenInvalid {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Two tokens for the same claims differ (nonce), so each is single-use.
	if tok == s.sign(claims{purpose: purposeConfirm, subscriberID: 7, listID: 9, expires: now.Add(time.Hour)}) {
		t.Error("tokens repeat")
	}
}
