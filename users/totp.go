package users

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"image/png"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// TOTP follows RFC 6238 as every authenticator app reads it: SHA-1, six
// digits, 30-second steps; a code of the step before or after is accepted
// too (clocks drift), but never one of a step already used.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPSetup is what a person needs to add Herald to an authenticator app.
type TOTPSetup struct {
	// Secret is the base32 key, for typing in.
	Secret string
	// URL is the otpauth:// URL the QR code holds.
	URL string
	// QRPNG is the QR code.
	QRPNG []byte
}

// ErrTOTPRequired is returned when an admin tries to turn off their second
// factor while every admin must use one.
var ErrTOTPRequired = errors.New("users: admins must use two-step sign-in")

func (s *Service) sealTOTP(userID int64, secret string) []byte {
	return s.totp.Seal([]byte(secret), []byte(fmt.Sprint("user:", userID)))
}

func (s *Service) openTOTP(userID int64, sealed []byte) (string, error) {
	b, err := s.totp.Open(sealed, []byte(fmt.Sprint("user:", userID)))
	if err != nil {
		return "", fmt.Errorf("users: open TOTP secret of %d: %w", userID, err)
	}
	return string(b), nil
}

// BeginTOTP makes a new TOTP secret for a user who has none enabled and
// keeps it (sealed) until ConfirmTOTP proves the app has it.
func (s *Service) BeginTOTP(ctx context.Context, userID int64) (TOTPSetup, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return TOTPSetup{}, err
	}
	if u.TOTPEnabled {
		return TOTPSetup{}, invalid.Field("totp", "is already on")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Issuer, AccountName: u.Email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("users: make TOTP secret: %w", err)
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("users: TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPSetup{}, fmt.Errorf("users: TOTP QR code: %w", err)
	}
	tag, err := s.db.Exec(ctx, `UPDATE users SET totp_secret = $2, totp_last_step = 0 WHERE id = $1 AND totp_enabled_at IS NULL`,
		userID, s.sealTOTP(userID, key.Secret()))
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("users: keep TOTP secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return TOTPSetup{}, invalid.Field("totp", "is already on")
	}
	return TOTPSetup{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}, nil
}

// matchStep returns the step whose code is code, within the skew and after
// lastStep, or 0.
func matchStep(secret, code string, lastStep int64, now time.Time) int64 {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return 0
	}
	current := now.Unix() / totpPeriod
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		if step <= lastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err == nil && hmac.Equal([]byte(want), []byte(code)) {
			return step
		}
	}
	return 0
}

// ConfirmTOTP turns TOTP on once code proves the app has the secret
// BeginTOTP made, and returns new recovery codes (shown once).
func (s *Service) ConfirmTOTP(ctx context.Context, actor audit.Actor, userID int64, code string) ([]string, error) {
	var codes []string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var sealed []byte
		var enabled bool
		err := tx.QueryRow(ctx, `SELECT totp_secret, totp_enabled_at IS NOT NULL FROM users WHERE id = $1 FOR UPDATE`, userID).
			Scan(&sealed, &enabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("users: confirm TOTP: %w", err)
		}
		if enabled {
			return invalid.Field("totp", "is already on")
		}
		if sealed == nil {
			return ErrBadCode
		}
		secret, err := s.openTOTP(userID, sealed)
		if err != nil {
			return err
		}
		step := matchStep(secret, code, 0, time.Now())
		if step == 0 {
			return ErrBadCode
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET totp_enabled_at = now(), totp_last_step = $2, updated_at = now() WHERE id = $1`,
			userID, step); err != nil {
			return fmt.Errorf("users: enable TOTP: %w", err)
		}
		if codes, err = newRecoveryCodes(ctx, tx, userID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.totp_enable", ObjectType: "user", ObjectID: fmt.Sprint(userID)})
	})
	return codes, err
}

// VerifySecondFactor completes a sign-in waiting for its second factor:
// with a TOTP code of a step not used before, or an unused recovery code.
// The waiting session is replaced by a full one with a new id, returned.
// Wrong codes count against the account and the address like wrong
// passwords.
func (s *Service) VerifySecondFactor(ctx context.Context, raw, code string, addr netip.Addr) (string, error) {
	if !validSessionID(raw) {
		return "", ErrNoSession
	}
	var userID int64
	var email string
	err := s.db.QueryRow(ctx, `SELECT s.user_id, u.email FROM user_sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id_hash = $1 AND s.stage = 'second_factor' AND s.expires_at > now() AND u.state = 'active'`,
		sessionHash(raw)).Scan(&userID, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNoSession
	}
	if err != nil {
		return "", fmt.Errorf("users: second factor: %w", err)
	}
	accountKey, addressKey := "account:"+strings.ToLower(email), "address:"+addressScope(addr)
	if wait, err := s.lockedFor(ctx, accountKey, addressKey); err != nil {
		return "", err
	} else if wait > 0 {
		s.signIns.WithLabelValues("locked_out").Inc()
		return "", &LockedOutError{RetryAfter: wait}
	}
	var newRaw string
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var sealed []byte
		var lastStep int64
		if err := tx.QueryRow(ctx, `SELECT totp_secret, totp_last_step FROM users WHERE id = $1 AND totp_enabled_at IS NOT NULL FOR UPDATE`,
			userID).Scan(&sealed, &lastStep); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNoSession // TOTP was turned off meanwhile: sign in again
			}
			return fmt.Errorf("users: second factor: %w", err)
		}
		secret, err := s.openTOTP(userID, sealed)
		if err != nil {
			return err
		}
		how := "totp"
		if step := matchStep(secret, code, lastStep, time.Now()); step > 0 {
			if _, err := tx.Exec(ctx, `UPDATE users SET totp_last_step = $2 WHERE id = $1`, userID, step); err != nil {
				return fmt.Errorf("users: second factor: %w", err)
			}
		} else {
			used, err := useRecoveryCode(ctx, tx, userID, code)
			if err != nil {
				return err
			}
			if !used {
				return ErrBadCode
			}
			how = "recovery_code"
		}
		u, err := getUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_sessions WHERE id_hash = $1`, sessionHash(raw)); err != nil {
			return fmt.Errorf("users: second factor: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_failures WHERE key = $1`, accountKey); err != nil {
			return fmt.Errorf("users: clear failures: %w", err)
		}
		res, err := s.startSession(ctx, tx, u, StageFull, addr, "")
		if err != nil {
			return err
		}
		newRaw = res.SessionID
		return audit.Record(ctx, tx, audit.User(u.ID, string(u.Role), u.Email, addr), audit.Change{Action: "session.second_factor",
			ObjectType: "user", ObjectID: fmt.Sprint(u.ID), Summary: map[string]any{"with": how}, NoEvent: true})
	})
	if errors.Is(err, ErrBadCode) {
		s.signIns.WithLabelValues("bad_code").Inc()
		if ferr := s.fail(ctx, accountKey, addressKey); ferr != nil {
			return "", ferr
		}
		return "", ErrBadCode
	}
	if err != nil {
		return "", err
	}
	s.signIns.WithLabelValues("ok").Inc()
	return newRaw, nil
}

// checkCurrentPassword verifies a user's password for a sensitive change.
func (s *Service) checkCurrentPassword(ctx context.Context, tx pgx.Tx, userID int64, password string) (User, error) {
	var hash *string
	err := tx.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("users: check password: %w", err)
	}
	if hash == nil || len(password) > maxPasswordBytes {
		return User{}, ErrWrongPassword
	}
	ok, err := VerifyPassword(password, *hash)
	if err != nil {
		return User{}, fmt.Errorf("users: check password: %w", err)
	}
	if !ok {
		return User{}, ErrWrongPassword
	}
	return getUser(ctx, tx, userID)
}

// DisableTOTP turns a user's second factor off, after their password.
// While every admin must use one, an admin cannot (ErrTOTPRequired).
func (s *Service) DisableTOTP(ctx context.Context, actor audit.Actor, userID int64, password string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := s.checkCurrentPassword(ctx, tx, userID, password)
		if err != nil {
			return err
		}
		if u.Role == access.RoleAdmin {
			required, err := requireAdminTOTP(ctx, tx)
			if err != nil {
				return err
			}
			if required {
				return ErrTOTPRequired
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = 0,
			updated_at = now() WHERE id = $1`, userID); err != nil {
			return fmt.Errorf("users: disable TOTP: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("users: disable TOTP: %w", err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.totp_disable", ObjectType: "user", ObjectID: fmt.Sprint(userID)})
	})
}

// RegenerateRecoveryCodes replaces a user's recovery codes, after their
// password, and returns the new ones (shown once).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, actor audit.Actor, userID int64, password string) ([]string, error) {
	var codes []string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := s.checkCurrentPassword(ctx, tx, userID, password)
		if err != nil {
			return err
		}
		if !u.TOTPEnabled {
			return invalid.Field("totp", "is off: recovery codes come with two-step sign-in")
		}
		if codes, err = newRecoveryCodes(ctx, tx, userID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "user.recovery_codes_regenerate", ObjectType: "user", ObjectID: fmt.Sprint(userID)})
	})
	return codes, err
}

// RecoveryCodesLeft counts a user's unused recovery codes.
func (s *Service) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM user_recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("users: count recovery codes: %w", err)
	}
	return n, nil
}

// recoveryAlphabet has no letters people confuse (0/O, 1/l/I).
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

const recoveryCodes = 10

// newRecoveryCode is three groups of four characters: 12 of 31 letters,
// about 59 bits.
func newRecoveryCode() string {
	b := make([]byte, 12)
	rand.Read(b)
	var sb strings.Builder
	for i, x := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		// 256 is not a multiple of 31; the bias (at most 1/256) costs a
		// fraction of a bit.
		sb.WriteByte(recoveryAlphabet[int(x)%len(recoveryAlphabet)])
	}
	return sb.String()
}

func normaliseRecoveryCode(code string) string {
	return strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
}

func recoveryHash(code string) []byte {
	sum := sha256.Sum256([]byte("herald-recovery:" + normaliseRecoveryCode(code)))
	return sum[:]
}

func newRecoveryCodes(ctx context.Context, tx pgx.Tx, userID int64) ([]string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return nil, fmt.Errorf("users: replace recovery codes: %w", err)
	}
	codes := make([]string, recoveryCodes)
	hashes := make([][]byte, recoveryCodes)
	for i := range codes {
		codes[i] = newRecoveryCode()
		hashes[i] = recoveryHash(codes[i])
	}
	if _, err := tx.Exec(ctx, `INSERT INTO user_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])`, userID, hashes); err != nil {
		return nil, fmt.Errorf("users: store recovery codes: %w", err)
	}
	return codes, nil
}

// useRecoveryCode spends one of a user's recovery codes, if code is one.
func useRecoveryCode(ctx context.Context, tx pgx.Tx, userID int64, code string) (bool, error) {
	if n := len(normaliseRecoveryCode(code)); n != 12 {
		return false, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE user_recovery_codes SET used_at = now()
		WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`, userID, recoveryHash(code))
	if err != nil {
		return false, fmt.Errorf("users: use recovery code: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
