package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/herald-im/herald/invalid"
)

// Params are argon2id's cost parameters. They are stored with each hash,
// so raising them later leaves old hashes verifiable; a hash made with
// lower ones is rehashed at the next sign-in (NeedsRehash).
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams follow RFC 9106's second recommended option (64 MiB, 3
// passes) with the threads this kind of machine has.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 2}

const (
	saltLen = 16
	keyLen  = 32
	// Password length bounds, in bytes: a long passphrase is welcome, a
	// megabyte is an attack on argon2's time.
	minPasswordChars = 12
	maxPasswordBytes = 256
)

var b64 = base64.RawStdEncoding

// errMalformedHash is a stored hash Herald cannot read.
var errMalformedHash = errors.New("users: malformed password hash")

// HashPassword returns password's argon2id hash as a PHC string:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>.
func HashPassword(password string, p Params) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parseHash reads a PHC string made by HashPassword.
func parseHash(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errMalformedHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errMalformedHash
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return p, nil, nil, errMalformedHash
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, errMalformedHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, errMalformedHash
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether password matches the PHC string encoded,
// in constant time with respect to the password.
func VerifyPassword(password, encoded string) (bool, error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than
// p, so that a successful sign-in stores a new hash.
func NeedsRehash(encoded string, p Params) bool {
	got, _, key, err := parseHash(encoded)
	return err != nil || got != p || len(key) != keyLen
}

// checkPassword validates a new password: 12 characters at least, at most
// 256 bytes of valid UTF-8 without control characters, and not the email.
func checkPassword(field, password, email string) error {
	switch {
	case !utf8.ValidString(password):
		return invalid.Field(field, "must be valid UTF-8")
	case strings.ContainsFunc(password, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return invalid.Field(field, "must not contain control characters")
	case len(password) > maxPasswordBytes:
		return invalid.Fieldf(field, "must be at most %d bytes", maxPasswordBytes)
	case utf8.RuneCountInString(password) < minPasswordChars:
		return invalid.Fieldf(field, "must be at least %d characters", minPasswordChars)
	case email != "" && strings.EqualFold(strings.TrimSpace(password), strings.TrimSpace(email)):
		return invalid.Field(field, "must not be your email address")
	}
	return nil
}
