package webhooks

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/secrets"
)

// QueueWebhooks is the River queue of webhook deliveries.
const QueueWebhooks = "webhooks"

// EventTypes are the webhook event types an endpoint may ask for.
var EventTypes = []string{
	"subscriber.opted_in", "subscriber.confirmed", "subscriber.unsubscribed", "subscriber.erased",
	"message.received", "conversation.assigned", "conversation.resolved", "campaign.finished",
}

// Config holds the service's settings.
type Config struct {
	// Secret is Herald's master secret; endpoint secrets are sealed with a
	// key derived from it.
	Secret []byte
	// AllowPrivate lets webhook URLs name loopback, private and link-local
	// addresses (HERALD_WEBHOOK_PRIVATE_NETWORKS; tests).
	AllowPrivate bool
	// Timeout bounds one delivery attempt; 0 means 10 seconds.
	Timeout time.Duration
	// DisableAfter is how long an endpoint may fail before it is disabled;
	// 0 means 24 hours.
	DisableAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service manages endpoints and delivers webhooks.
type Service struct {
	pool   *pgxpool.Pool
	river  *river.Client[pgx.Tx]
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	sealer *secrets.Sealer
	policy *delivery.EndpointPolicy
	client *http.Client

	results *prometheus.CounterVec
}

// NewService returns a ready Service; inserter inserts its jobs in the
// transactions that make them (an insert-only client will do).
func NewService(pool *pgxpool.Pool, inserter *river.Client[pgx.Tx], cfg Config, logger *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = 24 * time.Hour
	}
	policy := &delivery.EndpointPolicy{Hosts: []string{"*"}, AllowPrivate: cfg.AllowPrivate}
	transport := &http.Transport{
		// Every connection goes to an address the policy checked after
		// resolving the name: a URL whose name later resolves inside
		// the network is refused when dialled.
		DialContext:         policy.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		Proxy:               nil,
	}
	if cfg.AllowPrivate {
		transport.DialContext = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	return &Service{pool: pool, river: inserter, cfg: cfg, logger: logger, now: cfg.Now,
		sealer: secrets.NewSealer(cfg.Secret, "webhooks/secret"), policy: policy,
		client: &http.Client{Transport: transport, Timeout: cfg.Timeout,
			// A redirect would send the signed body somewhere nobody checked.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result (succeeded, failed, disabled)."}, []string{"result"}),
	}
}

// Collectors are the service's metrics.
func (s *Service) Collectors() []prometheus.Collector { return []prometheus.Collector{s.results} }

// AddWorkers registers the delivery worker.
func (s *Service) AddWorkers(workers *river.Workers) {
	river.AddWorker(workers, &DeliverWorker{Service: s})
}

// Queues is the River queue configuration of webhook jobs.
func Queues(workers int) map[string]river.QueueConfig {
	return map[string]river.QueueConfig{QueueWebhooks: {MaxWorkers: max(workers, 2)}}
}

// eventType maps an outbox topic and payload to a webhook event type; ""
// for events no webhook carries.
func eventType(topic string, payload map[string]any) string {
	switch topic {
	case "subscriber.subscribe":
		return "subscriber.opted_in"
	case "membership.confirm":
		return "subscriber.confirmed"
	case "membership.unsubscribe":
		return "subscriber.unsubscribed"
	case "subscriber.erase":
		return "subscriber.erased"
	case "conversation.message":
		if payload["author"] == "subscriber" {
			return "message.received"
		}
	case "conversation.assign":
		if payload["assignee_id"] != nil {
			return "conversation.assigned"
		}
	case "conversation.resolve":
		return "conversation.resolved"
	case "campaign.finish":
		return "campaign.finished"
	}
	return ""
}

// EraseSubscriber deletes the deliveries about a subscriber, in the
// erasure's transaction.
func EraseSubscriber(ctx context.Context, tx pgx.Tx, subscriberID int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE subscriber_id = $1`, subscriberID); err != nil {
		return fmt.Errorf("webhooks: erase deliveries: %w", err)
	}
	return nil
}
