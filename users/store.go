package users

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// NewUser is what Create takes.
type NewUser struct {
	Email string
	Name  string
	Role  access.Role
	// Password is optional: a user without one signs in only after setting
	// one through an access link.
	Password string
}

// Patch changes a user; nil fields stay.
type Patch struct {
	Name   *string
	Role   *access.Role
	Locale *string
}

const userColumns = `id, email, name, role, state, password_hash IS NOT NULL, totp_enabled_at IS NOT NULL,
		locale, created_at, updated_at, disabled_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.State, &u.HasPassword, &u.TOTPEnabled,
		&u.Locale, &u.CreatedAt, &u.UpdatedAt, &u.DisabledAt)
	return u, err
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// checkEmail validates an email address and returns it trimmed.
func checkEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	switch {
	case email == "":
		return "", invalid.Field(field, "is required")
	case len(email) > 254:
		return "", invalid.Field(field, "must be at most 254 bytes")
	case !utf8.ValidString(email) || strings.ContainsFunc(email, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return "", invalid.Field(field, "must be an email address without spaces or control characters")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || strings.Count(email, "@") != 1 {
		return "", invalid.Field(field, "must be an email address such as ada@example.com")
	}
	return email, nil
}

// checkName validates a display name and returns it trimmed.
func checkName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid.Field(field, "is required")
	case !utf8.ValidString(name):
		return "", invalid.Field(field, "must be valid UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", invalid.Field(field, "must not contain control characters")
	case utf8.RuneCountInString(name) > 200:
		return "", invalid.Field(field, "must be at most 200 characters")
	}
	return name, nil
}

func checkRole(field string, r access.Role) error {
	if !r.Valid() {
		return invalid.Field(field, "must be admin, marketer or agent")
	}
	return nil
}

func checkLocale(locale string) error {
	switch locale {
	case "", "en", "de":
		return nil
	}
	return invalid.Field("locale", "must be en, de or empty (the browser's language)")
}

// Create makes a user. Without a password they sign in only after setting
// one through an access link (CreateWithLink).
func (s *Service) Create(ctx context.Context, actor audit.Actor, nu NewUser) (User, error) {
	var u User
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		u, err = s.create(ctx, tx, actor, nu)
		return err
	})
	return u, err
}

func (s *Service) create(ctx context.Context, tx pgx.Tx, actor audit.Actor, nu NewUser) (User, error) {
	email, err := checkEmail("email", nu.Email)
	if err != nil {
		return User{}, err
	}
	name, err := checkName("name", nu.Name)
	if err != nil {
		return User{}, err
	}
	if err := checkRole("role", nu.Role); err != nil {
		return User{}, err
	}
	var hash *string
	if nu.Password != "" {
		if err := checkPassword("password", nu.Password, email); err != nil {
			return User{}, err
		}
		h := HashPassword(nu.Password, s.cfg.Password)
		hash = &h
	}
	const q = `
		INSERT INTO users (email, name, role, password_hash, password_changed_at)
		VALUES ($1, $2, $3, $4, CASE WHEN $4::text IS NULL THEN NULL ELSE now() END)
		RETURNING ` + userColumns
	u, err := scanUser(tx.QueryRow(ctx, q, email, name, nu.Role, hash))
	if isUniqueViolation(err) {
		return User{}, fmt.Errorf("%w: an account with this email address exists", ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("users: create: %w", err)
	}
	if err := audit.Record(ctx, tx, actor, audit.Change{Action: "user.create", ObjectType: "user", ObjectID: fmt.Sprint(u.ID),
		Summary: map[string]any{"role": u.Role, "password_set": hash != nil}}); err != nil {
		return User{}, err
	}
	return u, nil
}

// Get returns the user with id.
func (s *Service) Get(ctx context.Context, id int64) (User, error) {
	return getUser(ctx, s.db, id)
}

func getUser(ctx context.Context, db database.DB, id int64) (User, error) {
	u, err := scanUser(db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("users: unable to fetch user %d: %w", id, err)
	}
	return u, nil
}

// GetByEmail returns the user with email, in any case.
func (s *Service) GetByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, strings.TrimSpace(email)))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("users: unable to fetch user by email: %w", err)
	}
	return u, nil
}

// Count returns how many users exist.
func (s *Service) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("users: count: %w", err)
	}
	return n, nil
}

// List returns up to limit users with ids above after, by id.
func (s *Service) List(ctx context.Context, after int64, limit int) ([]User, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	const q = `
		SELECT ` + userColumns + `
		FROM users
		WHERE id > $1
		ORDER BY id
		LIMIT $2`
	rows, err := s.db.Query(ctx, q, after, limit)
	if err != nil {
		return nil, fmt.Errorf("users: list: %w", err)
	}
	defer rows.Close()
	list := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("users: unable to fetch user: %w", err)
		}
		list = append(list, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: list: %w", err)
	}
	return list, nil
}

// lockUser reads a user for update in tx.
func lockUser(ctx context.Context, tx pgx.Tx, id int64) (User, error) {
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("users: unable to fetch user %d: %w", id, err)
	}
	return u, nil
}

// otherActiveAdmins counts active admins other than id. Under adminLock a
// statement sees every change committed before the lock was granted.
func otherActiveAdmins(ctx context.Context, tx pgx.Tx, id int64) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND state = 'active' AND id <> $1`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("users: count admins: %w", err)
	}
	return n, nil
}

// adminLock serialises the changes that could remove the last active
// admin, so that two transactions that each demote or disable one of the
// last two admins cannot both see the other still there. (Locking the
// other admins' rows instead deadlocks: each holds its own.)
const adminLock = 0x41444d494e // "ADMIN"

func (s *Service) guardLastAdmin(ctx context.Context, tx pgx.Tx, u User) error {
	if u.Role != access.RoleAdmin || u.State != StateActive {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(adminLock)); err != nil {
		return fmt.Errorf("users: lock admins: %w", err)
	}
	n, err := otherActiveAdmins(ctx, tx, u.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLastAdmin
	}
	return nil
}

// Update changes a user's name, role or language.
func (s *Service) Update(ctx context.Context, actor audit.Actor, id int64, p Patch) (User, error) {
	// Input first: a bad patch is a 422 whether or not the user exists.
	if p.Name != nil {
		if _, err := checkName("name", *p.Name); err != nil {
			return User{}, err
		}
	}
	if p.Role != nil {
		if err := checkRole("role", *p.Role); err != nil {
			return User{}, err
		}
	}
	if p.Locale != nil {
		if err := checkLocale(*p.Locale); err != nil {
			return User{}, err
		}
	}
	var out User
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		var fields []string
		if p.Name != nil {
			name, err := checkName("name", *p.Name)
			if err != nil {
				return err
			}
			u.Name = name
			fields = append(fields, "name")
		}
		if p.Locale != nil {
			if err := checkLocale(*p.Locale); err != nil {
				return err
			}
			u.Locale = *p.Locale
			fields = append(fields, "locale")
		}
		summary := map[string]any{"fields": fields}
		if p.Role != nil && *p.Role != u.Role {
			if err := checkRole("role", *p.Role); err != nil {
				return err
			}
			if err := s.guardLastAdmin(ctx, tx, u); err != nil {
				return err
			}
			summary["role_from"], summary["role_to"] = u.Role, *p.Role
			u.Role = *p.Role
			fields = append(fields, "role")
			summary["fields"] = fields
		}
		const q = `
			UPDATE users SET name = $2, locale = $3, role = $4, updated_at = now()
			WHERE id = $1
			RETURNING ` + userColumns
		if out, err = scanUser(tx.QueryRow(ctx, q, id, u.Name, u.Locale, u.Role)); err != nil {
			return fmt.Errorf("users: update %d: %w", id, err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.update", ObjectType: "user", ObjectID: fmt.Sprint(id), Summary: summary})
	})
	return out, err
}

// Disable stops a user from signing in and ends all their sessions at once.
func (s *Service) Disable(ctx context.Context, actor audit.Actor, id int64) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if u.State == StateDisabled {
			return nil
		}
		if err := s.guardLastAdmin(ctx, tx, u); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET state = 'disabled', disabled_at = now(), updated_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("users: disable %d: %w", id, err)
		}
		ended, err := endSessions(ctx, tx, id, nil)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.disable", ObjectType: "user", ObjectID: fmt.Sprint(id),
			Summary: map[string]any{"sessions_ended": ended}})
	})
}

// Enable lets a disabled user sign in again.
func (s *Service) Enable(ctx context.Context, actor audit.Actor, id int64) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if u.State == StateActive {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET state = 'active', disabled_at = NULL, updated_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("users: enable %d: %w", id, err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.enable", ObjectType: "user", ObjectID: fmt.Sprint(id)})
	})
}

// endSessions deletes the sessions of user, but for the one whose id hash
// is keep, and returns how many ended.
func endSessions(ctx context.Context, tx pgx.Tx, userID int64, keep []byte) (int, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM user_sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR id_hash <> $2)`, userID, keep)
	if err != nil {
		return 0, fmt.Errorf("users: end sessions of %d: %w", userID, err)
	}
	return int(tag.RowsAffected()), nil
}

// ResetAccess clears a user's password, second factor and recovery codes,
// ends all their sessions and returns a link on which they set a new
// password (valid Config.ResetTTL, single use).
func (s *Service) ResetAccess(ctx context.Context, actor audit.Actor, id int64) (string, error) {
	var link string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		const q = `
			UPDATE users SET password_hash = NULL, password_changed_at = NULL, totp_secret = NULL,
				totp_enabled_at = NULL, updated_at = now()
			WHERE id = $1`
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("users: reset %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("users: reset %d: recovery codes: %w", id, err)
		}
		ended, err := endSessions(ctx, tx, id, nil)
		if err != nil {
			return err
		}
		if link, _, err = s.newLink(ctx, tx, actor, LinkReset, u.Email, u.Name, u.Role, &u.ID, s.cfg.ResetTTL); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.reset_access", ObjectType: "user", ObjectID: fmt.Sprint(id),
			Summary: map[string]any{"sessions_ended": ended}})
	})
	return link, err
}
