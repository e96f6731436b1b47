// Package apikeys issues and checks the API keys that authenticate the admin
// API. A key is shown once; only its SHA-256 is stored.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// Role is what a key may do (access.Role).
type Role = access.Role

// Roles, as in package access.
const (
	RoleAdmin    = access.RoleAdmin
	RoleMarketer = access.RoleMarketer
	RoleAgent    = access.RoleAgent
)

// Key is a stored API key without its secret.
type Key struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastUsedAt and RevokedAt are filled by List.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// ErrNotFound is returned when no key has the id.
var ErrNotFound = errors.New("apikeys: no such key")

// ErrInvalid is returned for unknown, malformed, revoked or expired keys.
var ErrInvalid = errors.New("apikeys: invalid key")

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// Create issues a key and returns its plaintext, which is never stored.
func Create(ctx context.Context, db database.DB, name string, role Role, ttl time.Duration) (string, *Key, error) {
	if !role.Valid() {
		return "", nil, invalid.Field("role", "must be admin, marketer or agent")
	}
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		return "", nil, invalid.Field("name", "must be 1-200 characters")
	}
	prefix := strings.ToLower(enc.EncodeToString(random(5)))
	secret := strings.ToLower(enc.EncodeToString(random(20)))
	plaintext := "hk_" + prefix + "_" + secret
	sum := sha256.Sum256([]byte(plaintext))
	k := Key{Name: name, Role: role, Prefix: prefix}
	var expires *time.Time
	if ttl > 0 {
		t := time.Now().Add(ttl)
		expires = &t
	}
	err := db.QueryRow(ctx, `INSERT INTO api_keys (name, role, prefix, secret_hash, expires_at) VALUES ($1, $2, $3, $4, $5)
		RETURNING id, created_at, expires_at`, name, role, prefix, sum[:], expires).Scan(&k.ID, &k.CreatedAt, &k.ExpiresAt)
	if err != nil {
		return "", nil, fmt.Errorf("apikeys: create: %w", err)
	}
	return plaintext, &k, nil
}

// Authenticate returns the key for a plaintext API key.
func Authenticate(ctx context.Context, db database.DB, plaintext string) (*Key, error) {
	rest, ok := strings.CutPrefix(plaintext, "hk_")
	prefix, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(prefix) != 8 {
		return nil, ErrInvalid
	}
	// The secret's SHA-256 is part of the match, so a guessed prefix with
	// a wrong secret changes nothing (not even last_used_at). Comparing
	// digests in SQL leaks nothing worth timing: nobody can choose a digest.
	sum := sha256.Sum256([]byte(plaintext))
	var k Key
	err := db.QueryRow(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE prefix = $1 AND secret_hash = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > clock_timestamp())
		RETURNING id, name, role, prefix, created_at, expires_at`, prefix, sum[:]).
		Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("apikeys: authenticate: %w", err)
	}
	return &k, nil
}

// List returns every key, revoked and expired ones too, without secrets.
func List(ctx context.Context, db database.DB) ([]Key, error) {
	rows, err := db.Query(ctx, `SELECT id, name, role, prefix, created_at, expires_at, last_used_at, revoked_at
		FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("apikeys: list: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
		var k Key
		err := r.Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("apikeys: list: %w", err)
	}
	return keys, nil
}

// Revoke disables a key at once. Revoking a revoked key changes nothing;
// an unknown id is ErrNotFound.
func Revoke(ctx context.Context, db database.DB, id int64) error {
	tag, err := db.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("apikeys: revoke: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
