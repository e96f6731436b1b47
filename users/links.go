package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
)

// LinkKind is what an access link is for.
type LinkKind string

// Kinds of access link.
const (
	// LinkInvitation makes a new user when used.
	LinkInvitation LinkKind = "invitation"
	// LinkReset sets the password of an existing user: after an admin reset
	// their access, or the first sign-in of a user made without one.
	LinkReset LinkKind = "reset"
)

// Link is an access link without its token (shown once, when made).
type Link struct {
	ID        int64       `json:"id"`
	Kind      LinkKind    `json:"kind"`
	Email     string      `json:"email"`
	Name      string      `json:"name"`
	Role      access.Role `json:"role"`
	UserID    *int64      `json:"user_id,omitempty"`
	CreatedBy string      `json:"created_by"`
	CreatedAt time.Time   `json:"created_at"`
	ExpiresAt time.Time   `json:"expires_at"`
}

// Invitation is what Invite takes.
type Invitation struct {
	Email string
	Name  string
	Role  access.Role
}

// tokenBytes is an access link token's randomness: 256 bits.
const tokenBytes = 32

func newToken() (raw string, hash []byte) {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	raw = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(raw))
	return raw, sum[:]
}

// tokenHash is the stored form of a token, or nil for a string that cannot
// be one (so that it is never looked up).
func tokenHash(raw string) []byte {
	if len(raw) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return nil
	}
	if _, err := base64.RawURLEncoding.DecodeString(raw); err != nil {
		return nil
	}
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

func (s *Service) linkURL(raw string) string { return s.cfg.PublicURL + "/access/" + raw }

const linkColumns = `id, kind, email, name, role, user_id, created_by, created_at, expires_at`

func scanLink(row pgx.Row) (Link, error) {
	var l Link
	err := row.Scan(&l.ID, &l.Kind, &l.Email, &l.Name, &l.Role, &l.UserID, &l.CreatedBy, &l.CreatedAt, &l.ExpiresAt)
	return l, err
}

func (s *Service) newLink(ctx context.Context, tx pgx.Tx, actor audit.Actor, kind LinkKind, email, name string,
	role access.Role, userID *int64, ttl time.Duration) (string, Link, error) {
	// Only the newest link for an address works: an older one that leaked
	// (a forwarded message) stops working when a new one is made.
	if _, err := tx.Exec(ctx, `UPDATE access_links SET revoked_at = now()
		WHERE lower(email) = lower($1) AND used_at IS NULL AND revoked_at IS NULL`, email); err != nil {
		return "", Link{}, fmt.Errorf("users: revoke older links: %w", err)
	}
	raw, hash := newToken()
	const q = `
		INSERT INTO access_links (kind, token_hash, user_id, email, name, role, created_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING ` + linkColumns
	l, err := scanLink(tx.QueryRow(ctx, q, kind, hash, userID, email, name, role, actor.String(), time.Now().Add(ttl)))
	if err != nil {
		return "", Link{}, fmt.Errorf("users: make %s link: %w", kind, err)
	}
	return s.linkURL(raw), l, nil
}

// Invite makes an invitation link for a new user with role; the link is
// returned only here.
func (s *Service) Invite(ctx context.Context, actor audit.Actor, inv Invitation) (string, Link, error) {
	email, err := checkEmail("email", inv.Email)
	if err != nil {
		return "", Link{}, err
	}
	name := ""
	if inv.Name != "" {
		if name, err = checkName("name", inv.Name); err != nil {
			return "", Link{}, err
		}
	}
	if err := checkRole("role", inv.Role); err != nil {
		return "", Link{}, err
	}
	var url string
	var link Link
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))`, email).Scan(&exists); err != nil {
			return fmt.Errorf("users: invite: %w", err)
		}
		if exists {
			return fmt.Errorf("%w: an account with this email address exists", ErrConflict)
		}
		var err error
		if url, link, err = s.newLink(ctx, tx, actor, LinkInvitation, email, name, inv.Role, nil, s.cfg.InvitationTTL); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "invitation.create", ObjectType: "invitation",
			ObjectID: fmt.Sprint(link.ID), Summary: map[string]any{"role": inv.Role}})
	})
	return url, link, err
}

// ListInvitations returns the invitations that can still be used.
func (s *Service) ListInvitations(ctx context.Context) ([]Link, error) {
	const q = `
		SELECT ` + linkColumns + `
		FROM access_links
		WHERE kind = 'invitation' AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
		ORDER BY id`
	rows, err := s.db.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("users: list invitations: %w", err)
	}
	defer rows.Close()
	list := []Link{}
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("users: unable to fetch invitation: %w", err)
		}
		list = append(list, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: list invitations: %w", err)
	}
	return list, nil
}

// RevokeInvitation stops an open invitation from working.
func (s *Service) RevokeInvitation(ctx context.Context, actor audit.Actor, id int64) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE access_links SET revoked_at = now()
			WHERE id = $1 AND kind = 'invitation' AND used_at IS NULL AND revoked_at IS NULL`, id)
		if err != nil {
			return fmt.Errorf("users: revoke invitation %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "invitation.revoke", ObjectType: "invitation", ObjectID: fmt.Sprint(id)})
	})
}

// CreateWithLink makes a user without a password and a link on which they
// set one: the first admin of `make run`, and `herald user create` without
// a password.
func (s *Service) CreateWithLink(ctx context.Context, actor audit.Actor, nu NewUser) (User, string, error) {
	nu.Password = ""
	var u User
	var url string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if u, err = s.create(ctx, tx, actor, nu); err != nil {
			return err
		}
		url, _, err = s.newLink(ctx, tx, actor, LinkReset, u.Email, u.Name, u.Role, &u.ID, s.cfg.ResetTTL)
		return err
	})
	return u, url, err
}

// NewResetLink makes a new link on which an existing user sets a password,
// without changing anything else (`herald user reset`).
func (s *Service) NewResetLink(ctx context.Context, actor audit.Actor, email string) (string, error) {
	var url string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("users: reset link: %w", err)
		}
		var l Link
		if url, l, err = s.newLink(ctx, tx, actor, LinkReset, u.Email, u.Name, u.Role, &u.ID, s.cfg.ResetTTL); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.reset_link", ObjectType: "user", ObjectID: fmt.Sprint(u.ID),
			Summary: map[string]any{"link_id": l.ID}})
	})
	return url, err
}

// LookupLink returns the link a token names, changing nothing:
// ErrLinkInvalid for a token Herald never made, ErrLinkExpired for one past
// its time or revoked (or whose user is disabled), ErrLinkUsed for one used.
func (s *Service) LookupLink(ctx context.Context, token string) (Link, error) {
	hash := tokenHash(token)
	if hash == nil {
		return Link{}, ErrLinkInvalid
	}
	const q = `
		SELECT ` + linkColumns + `, used_at IS NOT NULL, revoked_at IS NOT NULL OR expires_at <= now()
			OR EXISTS (SELECT 1 FROM users u WHERE u.id = access_links.user_id AND u.state = 'disabled')
		FROM access_links
		WHERE token_hash = $1`
	var l Link
	var used, expired bool
	err := s.db.QueryRow(ctx, q, hash).Scan(&l.ID, &l.Kind, &l.Email, &l.Name, &l.Role, &l.UserID, &l.CreatedBy,
		&l.CreatedAt, &l.ExpiresAt, &used, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Link{}, ErrLinkInvalid
	case err != nil:
		return Link{}, fmt.Errorf("users: look up link: %w", err)
	case used:
		return Link{}, ErrLinkUsed
	case expired:
		return Link{}, ErrLinkExpired
	}
	return l, nil
}

// UseLink spends an access link: an invitation makes the user (with name,
// or the invitation's), a reset sets the user's password. The password is
// checked before the link is spent, so a refused one leaves it usable; two
// uses at once spend it once.
func (s *Service) UseLink(ctx context.Context, token, password, name string, addr netip.Addr) (User, error) {
	link, err := s.LookupLink(ctx, token)
	if err != nil {
		return User{}, err
	}
	if err := checkPassword("password", password, link.Email); err != nil {
		return User{}, err
	}
	if link.Kind == LinkInvitation {
		if name == "" {
			name = link.Name
		}
		if name, err = checkName("name", name); err != nil {
			return User{}, err
		}
	}
	hash := HashPassword(password, s.cfg.Password)
	var u User
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		const spend = `
			UPDATE access_links SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
			RETURNING id`
		var id int64
		err := tx.QueryRow(ctx, spend, tokenHash(token)).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrLinkUsed // spent (or revoked) since LookupLink
		}
		if err != nil {
			return fmt.Errorf("users: spend link: %w", err)
		}
		action := "invitation.accept"
		if link.Kind == LinkInvitation {
			const q = `
				INSERT INTO users (email, name, role, password_hash, password_changed_at)
				VALUES ($1, $2, $3, $4, now())
				RETURNING ` + userColumns
			u, err = scanUser(tx.QueryRow(ctx, q, link.Email, name, link.Role, hash))
			if isUniqueViolation(err) {
				return fmt.Errorf("%w: an account with this email address exists", ErrConflict)
			}
		} else {
			action = "user.password_set"
			const q = `
				UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now()
				WHERE id = $1 AND state = 'active'
				RETURNING ` + userColumns
			u, err = scanUser(tx.QueryRow(ctx, q, link.UserID, hash))
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrLinkExpired
			}
			if err == nil {
				// A new password ends every session the old one opened.
				_, err = endSessions(ctx, tx, u.ID, nil)
			}
		}
		if err != nil {
			return fmt.Errorf("users: use link: %w", err)
		}
		actor := audit.User(u.ID, string(u.Role), u.Email, addr)
		return audit.Record(ctx, tx, actor, audit.Change{Action: action, ObjectType: "user", ObjectID: fmt.Sprint(u.ID),
			Summary: map[string]any{"link_id": id, "role": u.Role}})
	})
	return u, err
}

// SetPassword changes a user's password after checking the current one,
// and ends every other session of theirs (all but keepSession, the id hash
// of the session asking).
func (s *Service) SetPassword(ctx context.Context, actor audit.Actor, userID int64, current, next string, keepSession []byte) error {
	var stored *string
	var email string
	err := s.db.QueryRow(ctx, `SELECT password_hash, email FROM users WHERE id = $1`, userID).Scan(&stored, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("users: set password: %w", err)
	}
	if stored == nil || len(current) > maxPasswordBytes*4 {
		return ErrWrongPassword
	}
	ok, err := VerifyPassword(current, *stored)
	if err != nil {
		return fmt.Errorf("users: set password: %w", err)
	}
	if !ok {
		return ErrWrongPassword
	}
	if err := checkPassword("password", next, email); err != nil {
		return err
	}
	hash := HashPassword(next, s.cfg.Password)
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE id = $1`,
			userID, hash); err != nil {
			return fmt.Errorf("users: set password: %w", err)
		}
		ended, err := endSessions(ctx, tx, userID, keepSession)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.password_change", ObjectType: "user",
			ObjectID: fmt.Sprint(userID), Summary: map[string]any{"other_sessions_ended": ended}, NoEvent: true})
	})
}
