package users

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
)

// Stages of a session.
const (
	// StageFull is signed in.
	StageFull = "full"
	// StageSecondFactor had the right password; a TOTP or recovery code is
	// still due. It grants nothing but that step.
	StageSecondFactor = "second_factor"
	// StageEnrol must set up TOTP (required for admins) before anything else.
	StageEnrol = "enrol"
)

// pendingTTL bounds a session waiting for its second factor.
const pendingTTL = 5 * time.Minute

// Session is a browser's session, without its id (the browser holds it).
type Session struct {
	IDHash     []byte    `json:"-"`
	UserID     int64     `json:"user_id"`
	Stage      string    `json:"stage"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Address    string    `json:"address,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	// Current marks the session asking, in ListSessions.
	Current bool `json:"current,omitempty"`
}

// SignInResult is a new session: the id goes into the browser's cookie.
type SignInResult struct {
	SessionID string
	User      User
	Stage     string
	ExpiresAt time.Time
}

const sessionIDBytes = 32

func newSessionID() (raw string, hash []byte) {
	b := make([]byte, sessionIDBytes)
	rand.Read(b)
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, sessionHash(raw)
}

func sessionHash(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// validSessionID reports whether raw can be a session id at all, so that
// nothing else is looked up.
func validSessionID(raw string) bool {
	if len(raw) != base64.RawURLEncoding.EncodedLen(sessionIDBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(raw)
	return err == nil
}

// stageFor is the stage a new session of u starts in.
func (s *Service) stageFor(ctx context.Context, db pgx.Tx, u User) (string, error) {
	if u.TOTPEnabled {
		return StageSecondFactor, nil
	}
	if u.Role == access.RoleAdmin {
		required, err := requireAdminTOTP(ctx, db)
		if err != nil {
			return "", err
		}
		if required {
			return StageEnrol, nil
		}
	}
	return StageFull, nil
}

// startSession inserts a new session for u in tx; the id is always new, so
// that an id planted in a browser before sign-in never becomes signed in.
func (s *Service) startSession(ctx context.Context, tx pgx.Tx, u User, stage string, addr netip.Addr, ua string) (SignInResult, error) {
	raw, hash := newSessionID()
	expires := time.Now().Add(s.cfg.SessionAbsolute)
	if stage == StageSecondFactor {
		expires = time.Now().Add(pendingTTL)
	}
	var address any
	if addr.IsValid() {
		address = addr.String()
	}
	const q = `
		INSERT INTO user_sessions (id_hash, user_id, stage, expires_at, address, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6)`
	if _, err := tx.Exec(ctx, q, hash, u.ID, stage, expires, address, ua); err != nil {
		return SignInResult{}, fmt.Errorf("users: start session: %w", err)
	}
	return SignInResult{SessionID: raw, User: u, Stage: stage, ExpiresAt: expires}, nil
}

// NewSession starts a session for a user who just proved who they are by
// other means than a password (an access link on which they set one).
func (s *Service) NewSession(ctx context.Context, u User, addr netip.Addr, userAgent string) (SignInResult, error) {
	var res SignInResult
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		fresh, err := getUser(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if fresh.State != StateActive {
			return ErrBadCredentials
		}
		stage, err := s.stageFor(ctx, tx, fresh)
		if err != nil {
			return err
		}
		if res, err = s.startSession(ctx, tx, fresh, stage, addr, userAgent); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.User(fresh.ID, string(fresh.Role), fresh.Email, addr),
			audit.Change{Action: "session.sign_in", ObjectType: "user", ObjectID: fmt.Sprint(fresh.ID),
				Summary: map[string]any{"stage": stage, "via": "access_link"}, NoEvent: true})
	})
	return res, err
}

// Authenticate returns the session a browser's id names and its user:
// ErrNoSession when it is unknown, idle or past its end, or the user is
// disabled. It notes the session's use at most once a minute.
func (s *Service) Authenticate(ctx context.Context, raw string) (Session, User, error) {
	if !validSessionID(raw) {
		return Session{}, User{}, ErrNoSession
	}
	// One statement: touch when a minute has passed, and read either way.
	q := `
		WITH found AS (
			SELECT s.id_hash FROM user_sessions s JOIN users u ON u.id = s.user_id
			WHERE s.id_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - $2::float8 * interval '1 second'
				AND u.state = 'active'
		), touched AS (
			UPDATE user_sessions SET last_seen_at = now()
			WHERE id_hash IN (SELECT id_hash FROM found) AND last_seen_at < now() - interval '1 minute'
		)
		SELECT s.user_id, s.stage, s.created_at, s.last_seen_at, s.expires_at, ` + prefixed("u", userColumns) + `
		FROM user_sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id_hash IN (SELECT id_hash FROM found)`
	hash := sessionHash(raw)
	var sess Session
	var u User
	err := s.db.QueryRow(ctx, q, hash, s.cfg.SessionIdle.Seconds()).Scan(&sess.UserID, &sess.Stage, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt,
		&u.ID, &u.Email, &u.Name, &u.Role, &u.State, &u.HasPassword, &u.TOTPEnabled, &u.Locale, &u.CreatedAt, &u.UpdatedAt, &u.DisabledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, User{}, ErrNoSession
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("users: unable to fetch session: %w", err)
	}
	sess.IDHash = hash
	return sess, u, nil
}

// SignOut ends the session raw names.
func (s *Service) SignOut(ctx context.Context, raw string) error {
	if !validSessionID(raw) {
		return ErrNoSession
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM user_sessions WHERE id_hash = $1`, sessionHash(raw))
	if err != nil {
		return fmt.Errorf("users: sign out: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNoSession
	}
	return nil
}

// SignOutEverywhere ends every session of a user and returns how many.
func (s *Service) SignOutEverywhere(ctx context.Context, actor audit.Actor, userID int64) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if n, err = endSessions(ctx, tx, userID, nil); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.sign_out_everywhere", ObjectType: "user",
			ObjectID: fmt.Sprint(userID), Summary: map[string]any{"sessions_ended": n}})
	})
	return n, err
}

// ListSessions returns a user's open sessions, newest first; current is the
// id hash of the session asking.
func (s *Service) ListSessions(ctx context.Context, userID int64, current []byte) ([]Session, error) {
	const q = `
		SELECT id_hash, user_id, stage, created_at, last_seen_at, expires_at, coalesce(host(address), ''), user_agent
		FROM user_sessions
		WHERE user_id = $1 AND expires_at > now() AND last_seen_at > now() - $2::float8 * interval '1 second'
		ORDER BY created_at DESC`
	rows, err := s.db.Query(ctx, q, userID, s.cfg.SessionIdle.Seconds())
	if err != nil {
		return nil, fmt.Errorf("users: list sessions: %w", err)
	}
	defer rows.Close()
	list := []Session{}
	for rows.Next() {
		var x Session
		if err := rows.Scan(&x.IDHash, &x.UserID, &x.Stage, &x.CreatedAt, &x.LastSeenAt, &x.ExpiresAt, &x.Address, &x.UserAgent); err != nil {
			return nil, fmt.Errorf("users: unable to fetch session: %w", err)
		}
		x.Current = hmac.Equal(x.IDHash, current)
		list = append(list, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: list sessions: %w", err)
	}
	return list, nil
}

// PromoteSession turns a session that had to set up TOTP into a full one,
// under a new id (a change of privilege gets a new id), and returns it.
func (s *Service) PromoteSession(ctx context.Context, raw string) (string, error) {
	if !validSessionID(raw) {
		return "", ErrNoSession
	}
	newRaw, newHash := newSessionID()
	tag, err := s.db.Exec(ctx, `UPDATE user_sessions SET id_hash = $2, stage = 'full', last_seen_at = now()
		WHERE id_hash = $1 AND stage = 'enrol' AND expires_at > now()`, sessionHash(raw), newHash)
	if err != nil {
		return "", fmt.Errorf("users: promote session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return "", ErrNoSession
	}
	return newRaw, nil
}

// PurgeExpiredSessions deletes sessions past their end or idle too long.
func (s *Service) PurgeExpiredSessions(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM user_sessions WHERE expires_at <= now() OR last_seen_at <= now() - $1::float8 * interval '1 second'`,
		s.cfg.SessionIdle.Seconds())
	if err != nil {
		return 0, fmt.Errorf("users: purge sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CSRFToken is the token a session's state-changing requests carry:
// derived from the session id, so nothing more is stored, and useless to
// anyone who does not hold the id.
func (s *Service) CSRFToken(rawSessionID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("csrf:" + rawSessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether token is the session's CSRF token.
func (s *Service) CheckCSRF(rawSessionID, token string) bool {
	if rawSessionID == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(s.CSRFToken(rawSessionID)), []byte(token))
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, columns string) string {
	out := ""
	for i, c := range splitColumns(columns) {
		if i > 0 {
			out += ", "
		}
		out += alias + "." + c
	}
	return out
}

func splitColumns(columns string) []string {
	var out []string
	for _, c := range strings.Split(columns, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}
