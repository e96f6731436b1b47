package conversations

import (
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/secrets"
)

// QueueConversations is the River queue of pushes to one subscriber
// (agent replies, transactional messages). It has workers of its own, so a
// broadcast that fills the campaign queues never delays an answer.
const QueueConversations = "conversations"

// Errors the service returns; web/ maps them to status codes.
var (
	// ErrNotFound is returned for a conversation, message or canned
	// response that does not exist (or that the caller may not see).
	ErrNotFound = errors.New("conversations: not found")
	// ErrConflict is returned when a conversation changed under the caller:
	// another agent picked it up first.
	ErrConflict = errors.New("conversations: conflict")
	// ErrSubscriberGone is returned when the subscriber was erased or
	// blocked, or refuses service messages: nothing is stored or sent.
	ErrSubscriberGone = errors.New("conversations: the subscriber cannot be reached")
	// ErrBadToken is returned for receipt, button and attachment tokens
	// that do not verify.
	ErrBadToken = errors.New("conversations: bad token")
	// ErrForbidden is returned when the actor may not make this change.
	ErrForbidden = errors.New("conversations: not allowed")
)

// Config holds the service's settings.
type Config struct {
	// Secret is Herald's master secret; receipt, button and attachment
	// tokens are signed with keys derived from it.
	Secret []byte
	// PublicURL is where subscribers reach Herald (attachment links).
	PublicURL string
	// Storage keeps attachment bytes; nil keeps them in PostgreSQL.
	Storage Storage
	// Consent acts on the STOP and START keywords (optin.Service); nil
	// answers keywords without changing memberships.
	Consent ConsentKeeper
	// Notifier announces committed events to live views; nil leaves them
	// to the listeners' periodic read.
	Notifier *audit.Notifier
	// AttachmentURLTTL is how long an attachment link works; 0 means 5 minutes.
	AttachmentURLTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs conversations.
type Service struct {
	pool    *pgxpool.Pool
	river   *river.Client[pgx.Tx]
	senders *apps.Senders
	cfg     Config
	logger  *slog.Logger
	now     func() time.Time
	storage Storage
	consent ConsentKeeper

	receiptKey    []byte
	attachmentKey []byte
	metrics       metrics
}

// NewService returns a ready Service. inserter is the River client the
// service inserts jobs with, in the transactions of its changes (an
// insert-only client will do); senders pushes to an app's devices.
func NewService(pool *pgxpool.Pool, inserter *river.Client[pgx.Tx], senders *apps.Senders, cfg Config, logger *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AttachmentURLTTL <= 0 {
		cfg.AttachmentURLTTL = 5 * time.Minute
	}
	storage := cfg.Storage
	if storage == nil {
		storage = PostgresStorage{}
	}
	return &Service{pool: pool, river: inserter, senders: senders, cfg: cfg, logger: logger, now: cfg.Now, storage: storage, consent: cfg.Consent,
		receiptKey:    secrets.Derive(cfg.Secret, "conversations/receipts"),
		attachmentKey: secrets.Derive(cfg.Secret, "conversations/attachments"),
		metrics:       newMetrics(),
	}
}

// committed tells live views that events committed.
func (s *Service) committed() { s.cfg.Notifier.Poke() }

// AddWorkers registers the service's River workers.
func (s *Service) AddWorkers(workers *river.Workers) {
	river.AddWorker(workers, &DeliverWorker{Service: s})
	river.AddWorker(workers, &WakeWorker{Service: s})
	river.AddWorker(workers, &DrainWorker{Service: s})
	river.AddWorker(workers, &PurgeUnsentWorker{Service: s})
}

// Queues is the River queue configuration of conversation pushes. The
// queue is polled often and fetched from soon after each fetch: an answer
// waits for nobody, also when an insert notification comes late under
// load (the client's defaults are a second and 100 ms).
func Queues(workers int) map[string]river.QueueConfig {
	return map[string]river.QueueConfig{QueueConversations: {MaxWorkers: max(workers, 4),
		FetchPollInterval: 100 * time.Millisecond, FetchCooldown: 5 * time.Millisecond}}
}

// PeriodicJobs are the service's periodic jobs.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(30*time.Second), func() (river.JobArgs, *river.InsertOpts) {
			return DrainArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
			return PurgeUnsentArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}
