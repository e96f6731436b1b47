package users

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"time"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/secrets"
)

// State is whether a user may sign in.
type State string

// States of a user.
const (
	StateActive   State = "active"
	StateDisabled State = "disabled"
)

// User is a person's account, without secrets.
type User struct {
	ID          int64       `json:"id"`
	Email       string      `json:"email"`
	Name        string      `json:"name"`
	Role        access.Role `json:"role"`
	State       State       `json:"state"`
	HasPassword bool        `json:"has_password"`
	TOTPEnabled bool        `json:"totp_enabled"`
	Locale      string      `json:"locale,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	DisabledAt  *time.Time  `json:"disabled_at,omitempty"`
}

// Sentinel errors; web/ maps them to status codes.
var (
	// ErrNotFound: no such user, team, invitation or session.
	ErrNotFound = errors.New("users: not found")
	// ErrConflict: the email or team name is taken.
	ErrConflict = errors.New("users: already exists")
	// ErrBadCredentials: wrong email or password, or a disabled account.
	// It never says which.
	ErrBadCredentials = errors.New("users: wrong email or password")
	// ErrBadCode: a wrong or reused TOTP or recovery code.
	ErrBadCode = errors.New("users: wrong code")
	// ErrNoSession: no session, or one that expired or was ended.
	ErrNoSession = errors.New("users: no session")
	// ErrLinkInvalid: an access link Herald never made (or mistyped).
	ErrLinkInvalid = errors.New("users: invalid link")
	// ErrLinkExpired: an access link past its time, or revoked.
	ErrLinkExpired = errors.New("users: link expired")
	// ErrLinkUsed: an access link already used.
	ErrLinkUsed = errors.New("users: link already used")
	// ErrLastAdmin: the change would leave no active admin.
	ErrLastAdmin = errors.New("users: the last active admin cannot be disabled or demoted")
	// ErrWrongPassword: the current password given to change it is wrong.
	ErrWrongPassword = errors.New("users: current password is wrong")
)

// LockedOutError is returned by sign-in while an account or an address is
// locked out after too many failures.
type LockedOutError struct {
	RetryAfter time.Duration
}

func (e *LockedOutError) Error() string {
	return "users: too many failed sign-ins; try again in " + e.RetryAfter.Round(time.Second).String()
}

// Config is the service's settings; zero fields take the defaults.
type Config struct {
	// Secret is HERALD_SECRET: it seals TOTP secrets and derives CSRF tokens.
	Secret []byte
	// PublicURL is where links point (HERALD_PUBLIC_URL).
	PublicURL string
	// SessionIdle ends a session unused for this long (default 12 h).
	SessionIdle time.Duration
	// SessionAbsolute ends any session this long after sign-in (default 7 days).
	SessionAbsolute time.Duration
	// InvitationTTL is how long an invitation link works (default 7 days).
	InvitationTTL time.Duration
	// ResetTTL is how long a reset or first sign-in link works (default 24 h).
	ResetTTL time.Duration
	// MaxFailuresAccount failed sign-ins per account within LockoutWindow
	// lock the account for LockoutDuration (defaults 5, 15 min, 15 min).
	MaxFailuresAccount int
	// MaxFailuresAddress is the same per client address (default 20).
	MaxFailuresAddress int
	LockoutWindow      time.Duration
	LockoutDuration    time.Duration
	// Password is the argon2id cost for new hashes (default DefaultParams).
	Password Params
	// Issuer names Herald in authenticator apps (default "Herald").
	Issuer string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SessionIdle, 12*time.Hour)
	def(&c.SessionAbsolute, 7*24*time.Hour)
	def(&c.InvitationTTL, 7*24*time.Hour)
	def(&c.ResetTTL, 24*time.Hour)
	def(&c.LockoutWindow, 15*time.Minute)
	def(&c.LockoutDuration, 15*time.Minute)
	if c.MaxFailuresAccount <= 0 {
		c.MaxFailuresAccount = 5
	}
	if c.MaxFailuresAddress <= 0 {
		c.MaxFailuresAddress = 20
	}
	if c.Password == (Params{}) {
		c.Password = DefaultParams
	}
	if c.Issuer == "" {
		c.Issuer = "Herald"
	}
	return c
}

// Service manages users, sessions and teams. It is complete after
// NewService.
type Service struct {
	db     database.Pool
	cfg    Config
	logger *slog.Logger
	// totp seals TOTP secrets at rest; csrfKey derives CSRF tokens.
	totp    *secrets.Sealer
	csrfKey []byte
	// dummyHash is verified against when an account does not exist, so
	// that a sign-in takes as long whether or not it does.
	dummyHash string
	signIns   *prometheus.CounterVec
	lockouts  *prometheus.CounterVec
}

// NewService returns a ready Service.
func NewService(db database.Pool, cfg Config, logger *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	return &Service{
		db:        db,
		cfg:       cfg,
		logger:    logger,
		totp:      secrets.NewSealer(cfg.Secret, "users/totp"),
		csrfKey:   secrets.Derive(cfg.Secret, "users/csrf"),
		dummyHash: HashPassword("herald dummy password, never anyone's", cfg.Password),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_sign_ins_total", Help: "Sign-in attempts by result (ok, bad_credentials, locked_out, bad_code).",
		}, []string{"result"}),
		lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_sign_in_lockouts_total", Help: "Temporary sign-in lockouts, per account or client address.",
		}, []string{"scope"}),
	}
}

// Collectors are the service's metrics, for a Prometheus registry.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.signIns, s.lockouts}
}

// Config returns the service's settings with defaults applied.
func (s *Service) Config() Config { return s.cfg }
