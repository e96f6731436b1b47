// Package config reads Herald's settings from environment variables, applies
// documented defaults and validates them once at start, so that a bad value
// stops the process with a message naming the variable instead of failing
// later in some handler.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the validated configuration of one Herald process.
type Config struct {
	DatabaseURL string // HERALD_DATABASE_URL
	Listen      string // HERALD_LISTEN
	PublicURL   string // HERALD_PUBLIC_URL, without trailing slash
	Secret      []byte // HERALD_SECRET, at least 32 bytes
	LogLevel    string // HERALD_LOG_LEVEL: debug, info, warn, error

	// Simulator runs the provider simulator in-process and points the
	// default app's APNs and FCM credentials at it (HERALD_SIMULATOR).
	Simulator       bool
	SimulatorListen string // HERALD_SIMULATOR_LISTEN

	VAPIDSubject string // HERALD_VAPID_SUBJECT, the contact in VAPID JWTs

	ConfirmTokenTTL     time.Duration // HERALD_CONFIRM_TOKEN_TTL
	PendingPurgeAfter   time.Duration // HERALD_PENDING_PURGE_AFTER
	UnsubscribeTokenTTL time.Duration // HERALD_UNSUBSCRIBE_TOKEN_TTL
	SubscriberTokenTTL  time.Duration // HERALD_SUBSCRIBER_TOKEN_TTL

	RateLimitPerIP         int // HERALD_RATE_LIMIT_IP, public requests per minute per client address
	RateLimitPerSubscriber int // HERALD_RATE_LIMIT_SUBSCRIBER, public requests per minute per subscriber

	MaxBodyBytes   int // HERALD_MAX_BODY_BYTES for JSON requests
	MaxImportBytes int // HERALD_MAX_IMPORT_BYTES for CSV uploads

	SMTPURL  string // HERALD_SMTP_URL, smtp://user:pass@host:port; empty disables email
	SMTPFrom string // HERALD_SMTP_FROM

	TrustProxy bool // HERALD_TRUST_PROXY: take the client address from X-Forwarded-For

	// JobTimeout bounds one River job (HERALD_JOB_TIMEOUT); RescueStuckAfter
	// (HERALD_RESCUE_STUCK_AFTER) is when a job whose process died is run
	// again elsewhere. It must exceed JobTimeout.
	JobTimeout       time.Duration
	RescueStuckAfter time.Duration
	// BatchSize is how many devices one campaign batch job sends to.
	BatchSize int // HERALD_BATCH_SIZE
	// ShutdownGrace bounds a graceful stop (HERALD_SHUTDOWN_GRACE): running
	// batches finish the slice they are sending and record it; what is still
	// in flight when it runs out is cut off and recorded as unknown.
	ShutdownGrace time.Duration
	// DeliveryRetention is how long a campaign's per-device delivery records
	// are kept after it ended (HERALD_DELIVERY_RETENTION, e.g. 90d); its
	// totals are kept for good.
	DeliveryRetention time.Duration
	// WebPushHosts are the host suffixes Web Push endpoints may have
	// (HERALD_WEBPUSH_HOSTS, comma-separated; "*" for any host); empty means
	// the browsers' push services (delivery.DefaultWebPushHosts).
	WebPushHosts []string
	// WebPushPrivateNetworks lets Web Push requests go to loopback and
	// private addresses (HERALD_WEBPUSH_PRIVATE_NETWORKS): for tests, and a
	// push service inside one's own network. Off, a subscription naming an
	// internal address is refused, also when a public-looking name resolves
	// to one.
	WebPushPrivateNetworks bool
	// WorkerID is this process's River client identity (HERALD_WORKER_ID);
	// empty means the host name, with a slot number when several processes
	// run on one host. Jobs a crashed process left running under it are
	// handed back when a process with the same identity starts.
	WorkerID string
	// AttachmentDir keeps conversation attachments as files in this
	// directory (HERALD_ATTACHMENT_DIR); empty keeps them in PostgreSQL.
	AttachmentDir string
	// WebhookPrivateNetworks lets webhook URLs name loopback and private
	// addresses (HERALD_WEBHOOK_PRIVATE_NETWORKS): for tests and receivers
	// inside one's own network.
	WebhookPrivateNetworks bool

	// ProviderCAFile is a PEM bundle trusted for provider connections in
	// addition to the system roots (HERALD_PROVIDER_CA_FILE): a provider
	// simulator run outside Herald, or a corporate TLS proxy.
	ProviderCAFile string

	// MetricsListen is a second address that serves only /metrics
	// (HERALD_METRICS_LISTEN), for a scraper on a private network; empty
	// for none. MetricsToken is the bearer token /metrics on the main
	// listener requires (HERALD_METRICS_TOKEN). With neither, /metrics on
	// the main listener answers only callers on the loopback interface:
	// metrics name routes, counts and outcomes an outsider has no need of.
	MetricsListen string
	MetricsToken  string

	// SessionIdle ends a browser session unused for this long
	// (HERALD_SESSION_IDLE); SessionMaxAge ends any session this long after
	// sign-in (HERALD_SESSION_MAX_AGE). InvitationTTL is how long an
	// invitation link works (HERALD_INVITATION_TTL).
	SessionIdle   time.Duration
	SessionMaxAge time.Duration
	InvitationTTL time.Duration
}

var (
	workerIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,59}$`)
	hostRE     = regexp.MustCompile(`^\.?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)
)

// Error names the environment variable that holds a bad value.
type Error struct {
	Variable string
	Reason   string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s %s", e.Variable, e.Reason) }

// DefaultDatabaseURL is used when HERALD_DATABASE_URL is not set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/herald?sslmode=disable"

// Load reads the process environment. requireSecret is false for commands such
// as migrate that never sign or encrypt anything.
func Load(requireSecret bool) (*Config, error) {
	return FromLookup(os.LookupEnv, requireSecret)
}

// FromLookup reads configuration through lookup, which tests use instead of
// the process environment.
func FromLookup(lookup func(string) (string, bool), requireSecret bool) (*Config, error) {
	r := reader{lookup: lookup}
	c := &Config{
		DatabaseURL:            r.str("HERALD_DATABASE_URL", DefaultDatabaseURL),
		Listen:                 r.str("HERALD_LISTEN", "127.0.0.1:8080"),
		LogLevel:               r.str("HERALD_LOG_LEVEL", "info"),
		Simulator:              r.boolean("HERALD_SIMULATOR", false),
		SimulatorListen:        r.str("HERALD_SIMULATOR_LISTEN", "127.0.0.1:8443"),
		VAPIDSubject:           r.str("HERALD_VAPID_SUBJECT", "mailto:admin@localhost"),
		ConfirmTokenTTL:        r.duration("HERALD_CONFIRM_TOKEN_TTL", 48*time.Hour),
		PendingPurgeAfter:      r.duration("HERALD_PENDING_PURGE_AFTER", 7*24*time.Hour),
		UnsubscribeTokenTTL:    r.duration("HERALD_UNSUBSCRIBE_TOKEN_TTL", 365*24*time.Hour),
		SubscriberTokenTTL:     r.duration("HERALD_SUBSCRIBER_TOKEN_TTL", 365*24*time.Hour),
		RateLimitPerIP:         r.integer("HERALD_RATE_LIMIT_IP", 60),
		RateLimitPerSubscriber: r.integer("HERALD_RATE_LIMIT_SUBSCRIBER", 20),
		MaxBodyBytes:           r.integer("HERALD_MAX_BODY_BYTES", 64<<10),
		MaxImportBytes:         r.integer("HERALD_MAX_IMPORT_BYTES", 512<<20),
		SMTPURL:                r.str("HERALD_SMTP_URL", ""),
		SMTPFrom:               r.str("HERALD_SMTP_FROM", "herald@localhost"),
		TrustProxy:             r.boolean("HERALD_TRUST_PROXY", false),
		JobTimeout:             r.duration("HERALD_JOB_TIMEOUT", time.Minute),
		RescueStuckAfter:       r.duration("HERALD_RESCUE_STUCK_AFTER", 2*time.Minute),
		BatchSize:              r.integer("HERALD_BATCH_SIZE", 1000),
		ShutdownGrace:          r.duration("HERALD_SHUTDOWN_GRACE", 25*time.Second),
		DeliveryRetention:      r.duration("HERALD_DELIVERY_RETENTION", 90*24*time.Hour),
		WorkerID:               r.str("HERALD_WORKER_ID", ""),
		AttachmentDir:          r.str("HERALD_ATTACHMENT_DIR", ""),
		WebhookPrivateNetworks: r.boolean("HERALD_WEBHOOK_PRIVATE_NETWORKS", false),
		SessionIdle:            r.duration("HERALD_SESSION_IDLE", 12*time.Hour),
		SessionMaxAge:          r.duration("HERALD_SESSION_MAX_AGE", 7*24*time.Hour),
		InvitationTTL:          r.duration("HERALD_INVITATION_TTL", 7*24*time.Hour),
		WebPushPrivateNetworks: r.boolean("HERALD_WEBPUSH_PRIVATE_NETWORKS", false),
		ProviderCAFile:         r.str("HERALD_PROVIDER_CA_FILE", ""),
		MetricsListen:          r.str("HERALD_METRICS_LISTEN", ""),
		MetricsToken:           r.str("HERALD_METRICS_TOKEN", ""),
	}
	c.PublicURL = strings.TrimRight(r.str("HERALD_PUBLIC_URL", "http://"+c.Listen), "/")
	for _, h := range strings.Split(r.str("HERALD_WEBPUSH_HOSTS", ""), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.WebPushHosts = append(c.WebPushHosts, h)
		}
	}
	secret := r.str("HERALD_SECRET", "")
	if r.err != nil {
		return nil, r.err
	}

	if _, err := url.Parse(c.DatabaseURL); err != nil || !strings.HasPrefix(c.DatabaseURL, "postgres") {
		return nil, &Error{"HERALD_DATABASE_URL", "must be a postgres:// URL"}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return nil, &Error{"HERALD_LISTEN", "must be host:port, e.g. 127.0.0.1:8080"}
	}
	if _, _, err := net.SplitHostPort(c.SimulatorListen); err != nil {
		return nil, &Error{"HERALD_SIMULATOR_LISTEN", "must be host:port"}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &Error{"HERALD_PUBLIC_URL", "must be an absolute http(s) URL"}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, &Error{"HERALD_LOG_LEVEL", "must be one of debug, info, warn, error"}
	}
	if !strings.HasPrefix(c.VAPIDSubject, "mailto:") && !strings.HasPrefix(c.VAPIDSubject, "https://") {
		return nil, &Error{"HERALD_VAPID_SUBJECT", "must be a mailto: or https: URL (RFC 8292)"}
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || u.Scheme != "smtp" || u.Host == "" {
			return nil, &Error{"HERALD_SMTP_URL", "must look like smtp://user:password@host:587"}
		}
	}
	for name, v := range map[string]int{
		"HERALD_RATE_LIMIT_IP": c.RateLimitPerIP, "HERALD_RATE_LIMIT_SUBSCRIBER": c.RateLimitPerSubscriber,
		"HERALD_MAX_BODY_BYTES": c.MaxBodyBytes, "HERALD_MAX_IMPORT_BYTES": c.MaxImportBytes,
		"HERALD_BATCH_SIZE": c.BatchSize,
	} {
		if v <= 0 {
			return nil, &Error{name, "must be a positive number"}
		}
	}
	for name, v := range map[string]time.Duration{
		"HERALD_CONFIRM_TOKEN_TTL": c.ConfirmTokenTTL, "HERALD_PENDING_PURGE_AFTER": c.PendingPurgeAfter,
		"HERALD_UNSUBSCRIBE_TOKEN_TTL": c.UnsubscribeTokenTTL, "HERALD_SUBSCRIBER_TOKEN_TTL": c.SubscriberTokenTTL,
		"HERALD_JOB_TIMEOUT": c.JobTimeout, "HERALD_RESCUE_STUCK_AFTER": c.RescueStuckAfter,
		"HERALD_SHUTDOWN_GRACE": c.ShutdownGrace, "HERALD_DELIVERY_RETENTION": c.DeliveryRetention,
		"HERALD_SESSION_IDLE": c.SessionIdle, "HERALD_SESSION_MAX_AGE": c.SessionMaxAge, "HERALD_INVITATION_TTL": c.InvitationTTL,
	} {
		if v <= 0 {
			return nil, &Error{name, "must be a positive duration such as 48h"}
		}
	}
	// A job past its timeout still takes up to 30 s to record what it sent;
	// rescuing it before then would run the batch twice at once.
	if c.RescueStuckAfter < c.JobTimeout+45*time.Second {
		return nil, &Error{"HERALD_RESCUE_STUCK_AFTER", "must exceed HERALD_JOB_TIMEOUT by at least 45s"}
	}
	if c.ProviderCAFile != "" {
		if _, err := os.Stat(c.ProviderCAFile); err != nil {
			return nil, &Error{"HERALD_PROVIDER_CA_FILE", "names a file that cannot be read"}
		}
	}
	for _, h := range c.WebPushHosts {
		if h != "*" && !hostRE.MatchString(h) {
			return nil, &Error{"HERALD_WEBPUSH_HOSTS", fmt.Sprintf("holds %q, not a host name such as push.example.com (or *)", h)}
		}
	}
	if c.WorkerID != "" && !workerIDRE.MatchString(c.WorkerID) {
		return nil, &Error{"HERALD_WORKER_ID", "must be 1-60 characters of a-z, 0-9 and - (a name for this process, stable across restarts)"}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return nil, &Error{"HERALD_METRICS_LISTEN", "must be host:port, e.g. 10.0.0.5:9090"}
		}
		if c.MetricsListen == c.Listen {
			return nil, &Error{"HERALD_METRICS_LISTEN", "must differ from HERALD_LISTEN"}
		}
	}
	if c.MetricsToken != "" && (len(c.MetricsToken) < 16 || strings.ContainsAny(c.MetricsToken, " \t\r\n")) {
		return nil, &Error{"HERALD_METRICS_TOKEN", "must be at least 16 characters without spaces (e.g. `openssl rand -hex 16`)"}
	}
	if c.SessionIdle > c.SessionMaxAge {
		return nil, &Error{"HERALD_SESSION_IDLE", "must not exceed HERALD_SESSION_MAX_AGE"}
	}
	if c.BatchSize > 10_000 {
		return nil, &Error{"HERALD_BATCH_SIZE", "must be at most 10000"}
	}
	if requireSecret {
		if len(secret) < 32 {
			return nil, &Error{"HERALD_SECRET", "must be set to at least 32 characters (e.g. `openssl rand -hex 32`)"}
		}
		c.Secret = []byte(secret)
	}
	return c, nil
}

type reader struct {
	lookup func(string) (string, bool)
	err    error
}

func (r *reader) str(name, def string) string {
	if v, ok := r.lookup(name); ok && v != "" {
		return v
	}
	return def
}

func (r *reader) integer(name string, def int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, "must be a whole number")
	}
	return n
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "must be true or false")
	}
	return b
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	// Retention periods read best in days, which time.ParseDuration lacks.
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100_000 {
			r.fail(name, "must be a duration such as 90d, 48h or 30m")
		}
		return time.Duration(n) * 24 * time.Hour
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, "must be a duration such as 90d, 48h or 30m")
	}
	return d
}

func (r *reader) fail(name, reason string) {
	if r.err == nil {
		r.err = &Error{name, reason}
	}
}

// IsConfigError reports whether err is a configuration error.
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
