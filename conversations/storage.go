package conversations

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
)

// Storage keeps attachment bytes under a key Herald chooses (random, never
// derived from a name). Each call gets the database handle of the
// transaction it belongs to, so that a storage in PostgreSQL writes and
// erases together with the attachment's row.
type Storage interface {
	Put(ctx context.Context, db database.DB, key string, data []byte) error
	Get(ctx context.Context, db database.DB, key string) ([]byte, error)
	Delete(ctx context.Context, db database.DB, keys []string) error
}

// ErrBlobMissing is returned by a Storage for a key it does not hold.
var ErrBlobMissing = errors.New("conversations: attachment bytes missing")

// PostgresStorage keeps attachment bytes in PostgreSQL (attachment_blobs):
// one backup holds everything, and erasure is one transaction.
type PostgresStorage struct{}

// Put stores data under key.
func (PostgresStorage) Put(ctx context.Context, db database.DB, key string, data []byte) error {
	if _, err := db.Exec(ctx, `INSERT INTO attachment_blobs (storage_key, data) VALUES ($1, $2)`, key, data); err != nil {
		return fmt.Errorf("conversations: store attachment: %w", err)
	}
	return nil
}

// Get returns the bytes stored under key.
func (PostgresStorage) Get(ctx context.Context, db database.DB, key string) ([]byte, error) {
	var data []byte
	err := db.QueryRow(ctx, `SELECT data FROM attachment_blobs WHERE storage_key = $1`, key).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrBlobMissing
	}
	if err != nil {
		return nil, fmt.Errorf("conversations: read attachment: %w", err)
	}
	return data, nil
}

// Delete removes the bytes under keys.
func (PostgresStorage) Delete(ctx context.Context, db database.DB, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := db.Exec(ctx, `DELETE FROM attachment_blobs WHERE storage_key = ANY($1)`, keys); err != nil {
		return fmt.Errorf("conversations: delete attachments: %w", err)
	}
	return nil
}

// DiskStorage keeps attachment bytes as files in a directory. A file is
// written before its row commits and removed with the erasure: an erasure
// whose transaction then fails has removed the bytes anyway (the safe
// side), and a failed upload may leave a file no row names.
type DiskStorage struct {
	Dir string
}

var diskKey = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

func (d DiskStorage) path(key string) (string, error) {
	if !diskKey.MatchString(key) {
		return "", fmt.Errorf("conversations: bad storage key")
	}
	return filepath.Join(d.Dir, key[:2], key), nil
}

// Put stores data under key.
func (d DiskStorage) Put(_ context.Context, _ database.DB, key string, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("conversations: store attachment: %w", err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("conversations: store attachment: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("conversations: store attachment: %w", err)
	}
	return nil
}

// Get returns the bytes stored under key.
func (d DiskStorage) Get(_ context.Context, _ database.DB, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrBlobMissing
	}
	if err != nil {
		return nil, fmt.Errorf("conversations: read attachment: %w", err)
	}
	return data, nil
}

// Delete removes the bytes under keys; a key already gone is no error.
func (d DiskStorage) Delete(_ context.Context, _ database.DB, keys []string) error {
	var errs []error
	for _, k := range keys {
		p, err := d.path(k)
		if err == nil {
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("conversations: delete attachments: %w", err)
	}
	return nil
}
