package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
)

const settingRequireAdminTOTP = "require_admin_totp"

// RequireAdminTOTP reports whether every admin must use a second factor.
func (s *Service) RequireAdminTOTP(ctx context.Context) (bool, error) {
	return requireAdminTOTP(ctx, s.db)
}

func requireAdminTOTP(ctx context.Context, db database.DB) (bool, error) {
	var on bool
	err := db.QueryRow(ctx, `SELECT value = 'true'::jsonb FROM settings WHERE key = $1`, settingRequireAdminTOTP).Scan(&on)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("users: read setting %s: %w", settingRequireAdminTOTP, err)
	}
	return on, nil
}

// SetRequireAdminTOTP turns the requirement on or off. Admins without a
// second factor are asked to set one up at their next sign-in; their
// current sessions go on.
func (s *Service) SetRequireAdminTOTP(ctx context.Context, actor audit.Actor, on bool) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		const q = `
			INSERT INTO settings (key, value) VALUES ($1, to_jsonb($2::boolean))
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()`
		if _, err := tx.Exec(ctx, q, settingRequireAdminTOTP, on); err != nil {
			return fmt.Errorf("users: set %s: %w", settingRequireAdminTOTP, err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "setting.update", ObjectType: "setting",
			ObjectID: settingRequireAdminTOTP, Summary: map[string]any{"value": on}})
	})
}
