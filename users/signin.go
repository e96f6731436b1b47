package users

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
)

// SignIn checks an email and password and starts a session. Every failure
// that is not a lockout is ErrBadCredentials, whether the account does not
// exist, has no password, is disabled or the password is wrong, and takes
// the same time: an unknown account's password is checked against a dummy
// hash. Failures count against the account (existing or not) and the
// client address; past the limits both are refused for a while
// (*LockedOutError), without checking the password.
func (s *Service) SignIn(ctx context.Context, email, password string, addr netip.Addr, userAgent string) (SignInResult, error) {
	accountKey := "account:" + strings.ToLower(strings.TrimSpace(email))
	addressKey := "address:" + addressScope(addr)
	if len(accountKey) > 300 {
		accountKey = accountKey[:300]
	}
	if wait, err := s.lockedFor(ctx, accountKey, addressKey); err != nil {
		return SignInResult{}, err
	} else if wait > 0 {
		s.signIns.WithLabelValues("locked_out").Inc()
		return SignInResult{}, &LockedOutError{RetryAfter: wait}
	}

	var id int64
	var hash *string
	var state State
	err := s.db.QueryRow(ctx, `SELECT id, password_hash, state FROM users WHERE lower(email) = lower($1)`,
		strings.TrimSpace(email)).Scan(&id, &hash, &state)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return SignInResult{}, fmt.Errorf("users: sign in: %w", err)
	}
	stored := s.dummyHash
	if hash != nil {
		stored = *hash
	}
	// A password past the bound is refused after the same work, not before
	// it: its length must not change the time either.
	candidate := password
	if len(candidate) > maxPasswordBytes {
		candidate = ""
	}
	ok, verr := VerifyPassword(candidate, stored)
	if verr != nil {
		s.logger.Error("stored password hash unreadable", "user_id", id, "error", verr)
		ok = false
	}
	if !ok || hash == nil || state != StateActive || len(password) > maxPasswordBytes {
		s.signIns.WithLabelValues("bad_credentials").Inc()
		if err := s.fail(ctx, accountKey, addressKey); err != nil {
			return SignInResult{}, err
		}
		return SignInResult{}, ErrBadCredentials
	}

	var res SignInResult
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := getUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if NeedsRehash(stored, s.cfg.Password) {
			if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, id, HashPassword(password, s.cfg.Password)); err != nil {
				return fmt.Errorf("users: rehash: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_failures WHERE key = $1`, accountKey); err != nil {
			return fmt.Errorf("users: clear failures: %w", err)
		}
		stage, err := s.stageFor(ctx, tx, u)
		if err != nil {
			return err
		}
		if res, err = s.startSession(ctx, tx, u, stage, addr, userAgent); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.User(u.ID, string(u.Role), u.Email, addr), audit.Change{Action: "session.sign_in",
			ObjectType: "user", ObjectID: fmt.Sprint(u.ID), Summary: map[string]any{"stage": stage}, NoEvent: true})
	})
	if err != nil {
		return SignInResult{}, err
	}
	s.signIns.WithLabelValues("ok").Inc()
	return res, nil
}

// addressScope is what shares one address's failure budget: an IPv4
// address, or an IPv6 /64 (one subscriber line).
func addressScope(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// lockedFor returns how long the longer of the two keys' lockouts has left.
func (s *Service) lockedFor(ctx context.Context, keys ...string) (time.Duration, error) {
	var secs float64
	err := s.db.QueryRow(ctx, `SELECT coalesce(max(extract(epoch FROM locked_until - now())), 0)::float8
		FROM sign_in_failures WHERE key = ANY($1) AND locked_until > now()`, keys).Scan(&secs)
	if err != nil {
		return 0, fmt.Errorf("users: read lockout: %w", err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// fail counts a failed sign-in (or second-factor code) against the account
// and the address, and locks either when it reaches its limit. Each count
// is one statement, so concurrent failures never under-count.
func (s *Service) fail(ctx context.Context, accountKey, addressKey string) error {
	for _, k := range []struct {
		key, scope string
		max        int
	}{{accountKey, "account", s.cfg.MaxFailuresAccount}, {addressKey, "address", s.cfg.MaxFailuresAddress}} {
		const q = `
			INSERT INTO sign_in_failures AS f (key, failures, window_start)
			VALUES ($1, 1, now())
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN f.window_start < now() - $2::float8 * interval '1 second' THEN 1 ELSE f.failures + 1 END,
				window_start = CASE WHEN f.window_start < now() - $2::float8 * interval '1 second' THEN now() ELSE f.window_start END,
				locked_until = CASE WHEN f.locked_until > now() THEN f.locked_until ELSE NULL END
			RETURNING failures`
		var n int
		if err := s.db.QueryRow(ctx, q, k.key, s.cfg.LockoutWindow.Seconds()).Scan(&n); err != nil {
			return fmt.Errorf("users: count failure: %w", err)
		}
		if n >= k.max {
			if _, err := s.db.Exec(ctx, `UPDATE sign_in_failures SET locked_until = now() + $2::float8 * interval '1 second',
				failures = 0, window_start = now() WHERE key = $1`, k.key, s.cfg.LockoutDuration.Seconds()); err != nil {
				return fmt.Errorf("users: lock out: %w", err)
			}
			s.lockouts.WithLabelValues(k.scope).Inc()
			// The account key is the email someone typed: logged as its
			// scope only, since a mistyped password is often in that field.
			s.logger.Warn("sign-in locked out", "scope", k.scope, "failures", n,
				"locked_for", s.cfg.LockoutDuration.String(), "address", strings.TrimPrefix(addressKey, "address:"))
		}
	}
	return nil
}

// PurgeSignInFailures deletes failure counts whose window and lockout have
// passed.
func (s *Service) PurgeSignInFailures(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM sign_in_failures
		WHERE window_start < now() - $1::float8 * interval '1 second' AND (locked_until IS NULL OR locked_until < now())`,
		s.cfg.LockoutWindow.Seconds())
	if err != nil {
		return 0, fmt.Errorf("users: purge sign-in failures: %w", err)
	}
	return tag.RowsAffected(), nil
}
