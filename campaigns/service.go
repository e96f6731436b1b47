package campaigns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/secrets"
	"github.com/herald-im/herald/subscribers"
)

// QueueCampaigns is the River queue for fan-out and retry jobs, apart from
// confirmations and conversation replies. Batches run on QueueFor(platform).
const QueueCampaigns = "campaigns"

// QueueFor is the queue of one provider's batches, so that an outage or a
// slowdown at one provider holds up no other.
func QueueFor(p delivery.Platform) string { return QueueCampaigns + "_" + string(p) }

// Queues is every queue campaign jobs use, with workers per queue; a process
// that runs campaign workers serves all of them.
func Queues(workersPerQueue int) map[string]river.QueueConfig {
	q := map[string]river.QueueConfig{QueueCampaigns: {MaxWorkers: max(2, workersPerQueue/2)}}
	for _, p := range []delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush} {
		q[QueueFor(p)] = river.QueueConfig{MaxWorkers: workersPerQueue}
	}
	return q
}

// Config holds campaign settings.
type Config struct {
	PublicURL string
	Secret    []byte
	// BatchSize is how many devices one batch job sends to; 0 means 1000.
	BatchSize int
	// DeliveryRetention is how long per-device delivery records are kept
	// after their campaign ended; 0 means DefaultDeliveryRetention.
	DeliveryRetention time.Duration
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Service runs campaigns.
type Service struct {
	pool     *pgxpool.Pool
	senders  *apps.Senders
	optin    *optin.Service
	cfg      Config
	clickKey []byte
	logger   *slog.Logger
	now      func() time.Time
	river    *river.Client[pgx.Tx]
	observe  func(delivery.Outcome)

	metrics metrics

	// draining closes when the process stops taking work: batches finish
	// the slice they are sending, record it and hand the rest back.
	draining  chan struct{}
	drainOnce sync.Once
}

// NewService returns a ready Service. inserter is the River client the
// service inserts jobs with, in the transactions of its changes: an
// insert-only client will do (a client needs its workers when it is made,
// and the workers need the service).
func NewService(pool *pgxpool.Pool, inserter *river.Client[pgx.Tx], senders *apps.Senders, optinSvc *optin.Service, cfg Config, logger *slog.Logger) *Service {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Service{pool: pool, river: inserter, senders: senders, optin: optinSvc, cfg: cfg, logger: logger, now: cfg.Now,
		clickKey: secrets.Derive(cfg.Secret, "campaigns/click"), draining: make(chan struct{}), metrics: newMetrics()}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// metrics are the service's Prometheus counters.
type metrics struct {
	mends             *prometheus.CounterVec
	partitionsDropped prometheus.Counter
	partitionErrors   prometheus.Counter
}

func newMetrics() metrics {
	return metrics{
		mends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_campaign_mends_total",
			Help: "Disagreements between a campaign's state and its work that the reconciler found and mended, by kind.",
		}, []string{"kind"}),
		partitionsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_delivery_partitions_dropped_total",
			Help: "Partitions of per-device delivery records dropped because their campaigns ended longer ago than the retention period.",
		}),
		partitionErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_delivery_partition_errors_total",
			Help: "Delivery partitions that could not be made ahead of time when a campaign was created (made again when it starts).",
		}),
	}
}

// Collectors are the service's metrics, for a Prometheus registry.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.mends, s.metrics.partitionsDropped, s.metrics.partitionErrors}
}

// Drain tells running campaign jobs that the process is stopping: each
// batch finishes the slice it is sending, records it and gives the rest of
// its work back to River (a snooze, which uses up no attempt), so another
// process, or this one after its restart, continues where it stopped and
// nothing is cut off in flight. Call it before River's soft stop.
func (s *Service) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

func (s *Service) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// AddWorkers registers the campaign workers; observe (may be nil) sees every
// delivery outcome, for metrics.
func (s *Service) AddWorkers(w *river.Workers, observe func(delivery.Outcome)) {
	s.observe = observe
	river.AddWorker(w, &StartWorker{Service: s})
	river.AddWorker(w, &BatchWorker{Service: s})
	river.AddWorker(w, &RetryWorker{Service: s})
	river.AddWorker(w, &ReconcileWorker{Service: s})
	river.AddWorker(w, &RetentionWorker{Service: s})
}

// Params creates or edits a campaign; nil fields are left alone on edit.
type Params struct {
	App               *string   `json:"app"`
	Name              *string   `json:"name"`
	Content           *Content  `json:"content"`
	Audience          *Audience `json:"audience"`
	Schedule          *Schedule `json:"schedule"`
	ThrottlePerMinute *int      `json:"throttle_per_minute"`
	ResendUnknown     *bool     `json:"resend_unknown"`
}

func (s *Service) validate(ctx context.Context, p *Params, creating bool) error {
	if p.Name != nil || creating {
		if p.Name == nil {
			return invalid.Field("name", "is required")
		}
		if err := subscribers.ValidateText("name", *p.Name, 200, true); err != nil {
			return err
		}
	}
	if creating && p.Content == nil {
		return invalid.Field("content", "is required")
	}
	if p.Content != nil {
		if err := p.Content.Validate(); err != nil {
			return err
		}
	}
	if creating && p.Audience == nil {
		return invalid.Field("audience", "is required")
	}
	if p.Audience != nil {
		if err := p.Audience.Validate(); err != nil {
			return err
		}
		for _, slug := range p.Audience.Lists {
			_, err := subscribers.GetList(ctx, s.pool, slug)
			if errors.Is(err, subscribers.ErrNotFound) {
				return invalid.Fieldf("audience.lists", "no list %q", slug)
			}
			if err != nil {
				return fmt.Errorf("campaigns: look up list %q: %w", slug, err)
			}
		}
	}
	if p.Schedule == nil && creating {
		p.Schedule = &Schedule{Mode: "now"}
	}
	if p.Schedule != nil {
		if err := p.Schedule.Validate(); err != nil {
			return err
		}
	}
	if t := p.ThrottlePerMinute; t != nil && (*t < 1 || *t > 10_000_000) {
		return invalid.Field("throttle_per_minute", "must be from 1 to 10,000,000")
	}
	return nil
}

const campaignColumns = `c.id, a.slug, c.app_id, c.name, c.status, c.content, c.audience, c.schedule, c.throttle_per_minute,
	c.resend_unknown, c.failure_reason, c.created_at, c.updated_at, c.scheduled_at, c.started_at, c.finished_at`

func scanCampaign(row pgx.Row) (*Campaign, error) {
	var c Campaign
	err := row.Scan(&c.ID, &c.App, &c.AppID, &c.Name, &c.Status, &c.Content, &c.Audience, &c.Schedule,
		&c.ThrottlePerMinute, &c.ResendUnknown, &c.FailureReason, &c.CreatedAt, &c.UpdatedAt, &c.ScheduledAt, &c.StartedAt, &c.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("campaigns: read: %w", err)
	}
	return &c, nil
}

// Create saves a draft.
func (s *Service) Create(ctx context.Context, actor audit.Actor, p Params) (*Campaign, error) {
	if err := s.validate(ctx, &p, true); err != nil {
		return nil, err
	}
	slug := apps.DefaultSlug
	if p.App != nil {
		slug = *p.App
	}
	app, err := apps.Get(ctx, s.pool, slug)
	if errors.Is(err, apps.ErrNotFound) {
		return nil, invalid.Field("app", "no such app")
	}
	if err != nil {
		return nil, fmt.Errorf("campaigns: look up app %q: %w", slug, err)
	}
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO campaigns (app_id, name, content, audience, schedule, throttle_per_minute, resend_unknown)
			VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, true)) RETURNING id`,
			app.ID, *p.Name, p.Content, p.Audience, p.Schedule, p.ThrottlePerMinute, p.ResendUnknown).Scan(&id)
		if err != nil {
			return fmt.Errorf("campaigns: create: %w", err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "campaign.create", ObjectType: "campaign",
			ObjectID: strconv.FormatInt(id, 10), Summary: map[string]any{"app": app.Slug}})
	})
	if err != nil {
		return nil, err
	}
	// Its delivery partition is made now rather than when it starts, where
	// it would wait on the table's lock. Failing here loses nothing: the
	// start job and every batch make it too.
	if err := ensurePartitions(ctx, s.pool, id); err != nil {
		s.metrics.partitionErrors.Inc()
		s.logger.Warn("delivery partition not made ahead", "campaign_id", id, "error", err)
	}
	return s.Get(ctx, id)
}

// Get returns a campaign.
func (s *Service) Get(ctx context.Context, id int64) (*Campaign, error) {
	return getCampaign(ctx, s.pool, id, "")
}

func getCampaign(ctx context.Context, db database.DB, id int64, lock string) (*Campaign, error) {
	return scanCampaign(db.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns c JOIN apps a ON a.id = c.app_id
		WHERE c.id = $1 `+lock, id))
}

// List returns campaigns by ascending id; status "" means all.
func (s *Service) List(ctx context.Context, status Status, page subscribers.Page) ([]Campaign, error) {
	limit := page.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns c JOIN apps a ON a.id = c.app_id
		WHERE c.id > $1 AND ($2 = '' OR c.status = $2) ORDER BY c.id LIMIT $3`, page.After, status, limit)
	if err != nil {
		return nil, fmt.Errorf("campaigns: list: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Campaign, error) {
		c, err := scanCampaign(r)
		if err != nil {
			return Campaign{}, err
		}
		return *c, nil
	})
}

// Update edits a campaign. Content may change in draft and scheduled; name,
// audience, schedule and throttle only in draft.
func (s *Service) Update(ctx context.Context, actor audit.Actor, id int64, p Params) (*Campaign, error) {
	if p.App != nil {
		return nil, invalid.Field("app", "cannot be changed; make a new campaign")
	}
	if err := s.validate(ctx, &p, false); err != nil {
		return nil, err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := getCampaign(ctx, tx, id, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if c.Status != StatusDraft && c.Status != StatusScheduled {
			return fmt.Errorf("%w: a %s campaign cannot be edited", ErrTransition, c.Status)
		}
		if c.Status == StatusScheduled && (p.Name != nil || p.Audience != nil || p.Schedule != nil || p.ThrottlePerMinute != nil ||
			p.ResendUnknown != nil) {
			return fmt.Errorf("%w: a scheduled campaign's content may change, nothing else; unschedule it first", ErrTransition)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET name = coalesce($2, name), content = coalesce($3, content),
			audience = coalesce($4, audience), schedule = coalesce($5, schedule),
			throttle_per_minute = coalesce($6, throttle_per_minute), resend_unknown = coalesce($7, resend_unknown),
			updated_at = now() WHERE id = $1`,
			id, p.Name, p.Content, p.Audience, p.Schedule, p.ThrottlePerMinute, p.ResendUnknown); err != nil {
			return fmt.Errorf("campaigns: update %d: %w", id, err)
		}
		return recordChange(ctx, tx, actor, "campaign.update", id, map[string]any{"fields": p.fields()})
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// recordChange writes the side records of a change to campaign id.
func recordChange(ctx context.Context, tx pgx.Tx, actor audit.Actor, action string, id int64, summary map[string]any) error {
	return audit.Record(ctx, tx, actor, audit.Change{Action: action, ObjectType: "campaign",
		ObjectID: strconv.FormatInt(id, 10), Summary: summary})
}

// fields names the fields p sets, for the audit log.
func (p *Params) fields() []string {
	var f []string
	for name, set := range map[string]bool{"name": p.Name != nil, "content": p.Content != nil, "audience": p.Audience != nil,
		"schedule": p.Schedule != nil, "throttle_per_minute": p.ThrottlePerMinute != nil, "resend_unknown": p.ResendUnknown != nil} {
		if set {
			f = append(f, name)
		}
	}
	sort.Strings(f)
	return f
}
