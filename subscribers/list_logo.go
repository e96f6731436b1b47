package subscribers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/brand"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// ErrNoLogo is returned by ListLogo for a list without a logo of its own.
var ErrNoLogo = errors.New("subscribers: the list has no logo")

// SetListLogo stores a public list's own logo (PNG, JPEG or WebP, as read from its
// bytes, at most brand.MaxLogoBytes), which its pages show instead of the
// app's, or removes it when data is nil.
func (s *Service) SetListLogo(ctx context.Context, actor audit.Actor, slug string, data []byte) (*List, error) {
	var typ *string
	if data != nil {
		t, err := brand.LogoType("logo", data)
		if err != nil {
			return nil, err
		}
		typ = &t
	}
	var l *List
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if data != nil {
			// Only a public list has pages to show a logo on.
			var visibility string
			err := tx.QueryRow(ctx, `SELECT visibility FROM lists WHERE slug = $1 FOR UPDATE`, slug).Scan(&visibility)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("subscribers: set logo of list %s: %w", slug, err)
			}
			if visibility != "public" {
				return invalid.Field("logo", "a private list has no pages to show a logo on")
			}
		}
		l, err = scanList(tx.QueryRow(ctx, `UPDATE lists SET logo = $2, logo_type = $3, updated_at = now()
			WHERE slug = $1 RETURNING `+listColumns, slug, data, typ))
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return err
			}
			return fmt.Errorf("subscribers: set logo of list %s: %w", slug, err)
		}
		action := "list.logo_set"
		if data == nil {
			action = "list.logo_remove"
		}
		return record(ctx, tx, actor, action, "list", slug, map[string]any{"list_id": l.ID, "bytes": len(data)})
	})
	return l, err
}

// ListLogo returns a public list's own logo, its type and when the list
// last changed. A private list has no pages, so its logo is nobody's
// business: ErrNotFound.
func ListLogo(ctx context.Context, db database.DB, slug string) (data []byte, contentType string, changed time.Time, err error) {
	var typ *string
	err = db.QueryRow(ctx, `SELECT logo, logo_type, updated_at FROM lists WHERE slug = $1 AND visibility = 'public'`, slug).
		Scan(&data, &typ, &changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("subscribers: logo of list %s: %w", slug, err)
	}
	if typ == nil {
		return nil, "", changed, ErrNoLogo
	}
	return data, *typ, changed, nil
}
