// Package secrets derives purpose-bound keys from HERALD_SECRET and seals
// data at rest with them, so that one configured secret never signs two kinds
// of thing with the same key.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Derive returns a 32-byte key for purpose, e.g. "optin/confirm".
func Derive(master []byte, purpose string) []byte {
	key, err := hkdf.Key(sha256.New, master, nil, "herald/"+purpose, 32)
	if err != nil {
		panic(err) // only for lengths hkdf cannot produce
	}
	return key
}

// Sealer encrypts with AES-256-GCM under a derived key.
type Sealer struct {
	aead cipher.AEAD
}

// ErrOpen is returned when sealed data was tampered with or sealed under
// another HERALD_SECRET.
var ErrOpen = errors.New("secrets: cannot open sealed data (was HERALD_SECRET changed?)")

// NewSealer derives a key for purpose and returns a Sealer using it.
func NewSealer(master []byte, purpose string) *Sealer {
	block, err := aes.NewCipher(Derive(master, purpose))
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead}
}

// Seal encrypts plaintext; additional binds it to a context such as a row id.
func (s *Sealer) Seal(plaintext, additional []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, additional)
}

// Open decrypts what Seal produced with the same additional data.
func (s *Sealer) Open(sealed, additional []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrOpen
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], additional)
	if err != nil {
		return nil, fmt.Errorf("%w", ErrOpen)
	}
	return out, nil
}
