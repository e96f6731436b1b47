package apikeys

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
)

// Service issues and revokes keys for an actor, each change in its own
// transaction with its audit entry. The package functions are its building
// blocks.
type Service struct {
	db database.Pool
}

// NewService returns a ready Service.
func NewService(db database.Pool) *Service { return &Service{db: db} }

// Create issues a key and returns its plaintext, which is never stored.
func (s *Service) Create(ctx context.Context, actor audit.Actor, name string, role Role, ttl time.Duration) (string, *Key, error) {
	var plain string
	var key *Key
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if plain, key, err = Create(ctx, tx, name, role, ttl); err != nil {
			return err
		}
		summary := map[string]any{"name": key.Name, "role": key.Role}
		if key.ExpiresAt != nil {
			summary["expires_at"] = key.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "api_key.create", ObjectType: "api_key",
			ObjectID: strconv.FormatInt(key.ID, 10), Summary: summary})
	})
	if err != nil {
		return "", nil, err
	}
	return plain, key, nil
}

// Revoke disables a key at once; an unknown id is ErrNotFound.
func (s *Service) Revoke(ctx context.Context, actor audit.Actor, id int64) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := Revoke(ctx, tx, id); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, actor, audit.Change{Action: "api_key.revoke", ObjectType: "api_key",
			ObjectID: strconv.FormatInt(id, 10)}); err != nil {
			return fmt.Errorf("apikeys: revoke %d: %w", id, err)
		}
		return nil
	})
}
