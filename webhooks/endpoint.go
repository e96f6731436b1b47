package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// ErrNotFound is returned for an endpoint or delivery that does not exist.
var ErrNotFound = errors.New("webhooks: not found")

// Endpoint is a receiver of webhooks. Its secret is shown only when it is
// made or rotated.
type Endpoint struct {
	ID                  int64      `json:"id"`
	URL                 string     `json:"url"`
	Description         string     `json:"description"`
	Events              []string   `json:"events"`
	Enabled             bool       `json:"enabled"`
	DisabledReason      string     `json:"disabled_reason"`
	FailingSince        *time.Time `json:"failing_since"`
	PreviousSecretUntil *time.Time `json:"previous_secret_until"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// NewEndpoint registers an endpoint.
type NewEndpoint struct {
	URL         string   `json:"url"`
	Description string   `json:"description"`
	Events      []string `json:"events"`
}

// EndpointUpdate changes an endpoint; nil fields are left alone.
type EndpointUpdate struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	Events      *[]string `json:"events"`
	Enabled     *bool     `json:"enabled"`
}

const endpointColumns = `id, url, description, events, enabled, disabled_reason, failing_since, previous_secret_until, created_at, updated_at`

func scanEndpoint(row pgx.Row) (*Endpoint, error) {
	var e Endpoint
	err := row.Scan(&e.ID, &e.URL, &e.Description, &e.Events, &e.Enabled, &e.DisabledReason, &e.FailingSince,
		&e.PreviousSecretUntil, &e.CreatedAt, &e.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &e, err
}

// checkURL validates a webhook URL: absolute http or https, no user
// information, and unless private networks are allowed, no loopback,
// private or link-local address (checked again when connecting).
func (s *Service) checkURL(raw string) error {
	if len(raw) > 2000 || !utf8.ValidString(raw) || strings.ContainsAny(raw, "\x00 \r\n\t") {
		return invalid.Field("url", "must be an http or https URL of at most 2000 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" {
		return invalid.Field("url", "must be an absolute http or https URL")
	}
	if u.User != nil {
		return invalid.Field("url", "must not hold a user name or password")
	}
	if err := s.policy.CheckURL(raw); err != nil {
		return invalid.Field("url", "must not point at a loopback, private or link-local address")
	}
	return nil
}

func checkEvents(events []string) ([]string, error) {
	out := []string{}
	for i, e := range events {
		if !slices.Contains(EventTypes, e) {
			return nil, invalid.Fieldf(fmt.Sprintf("events[%d]", i), "unknown event type (known: %s)", strings.Join(EventTypes, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func checkDescription(d string) error {
	if !utf8.ValidString(d) || strings.ContainsRune(d, 0) || utf8.RuneCountInString(d) > 500 {
		return invalid.Field("description", "must be text of at most 500 characters")
	}
	return nil
}

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhooks: secret: %w", err)
	}
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// seal binds a sealed secret to its endpoint.
func (s *Service) seal(id int64, secret string) []byte {
	return s.sealer.Seal([]byte(secret), []byte("webhook:"+strconv.FormatInt(id, 10)))
}

func (s *Service) open(id int64, sealed []byte) (string, error) {
	b, err := s.sealer.Open(sealed, []byte("webhook:"+strconv.FormatInt(id, 10)))
	if err != nil {
		return "", fmt.Errorf("webhooks: open secret of endpoint %d: %w", id, err)
	}
	return string(b), nil
}

// Create registers an endpoint and returns it with its signing secret,
// which is shown only now.
func (s *Service) Create(ctx context.Context, actor audit.Actor, n NewEndpoint) (*Endpoint, string, error) {
	if err := s.checkURL(n.URL); err != nil {
		return nil, "", err
	}
	if err := checkDescription(n.Description); err != nil {
		return nil, "", err
	}
	events, err := checkEvents(n.Events)
	if err != nil {
		return nil, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	var e *Endpoint
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		// The secret is sealed with the row's id: insert, then seal.
		if err := tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (url, description, events, secret) VALUES ($1, $2, $3, '')
			RETURNING id`, n.URL, n.Description, events).Scan(&id); err != nil {
			return fmt.Errorf("webhooks: create endpoint: %w", err)
		}
		if e, err = scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints SET secret = $2 WHERE id = $1 RETURNING `+endpointColumns,
			id, s.seal(id, secret))); err != nil {
			return fmt.Errorf("webhooks: create endpoint: %w", err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "webhook.create", ObjectType: "webhook",
			ObjectID: strconv.FormatInt(id, 10), Summary: map[string]any{"events": events}})
	})
	if err != nil {
		return nil, "", err
	}
	return e, secret, nil
}

// List returns every endpoint.
func (s *Service) List(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) {
		e, err := scanEndpoint(r)
		if err != nil {
			return Endpoint{}, err
		}
		return *e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: unable to fetch endpoint: %w", err)
	}
	return out, nil
}

// Get returns one endpoint.
func (s *Service) Get(ctx context.Context, id int64) (*Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("webhooks: get endpoint: %w", err)
	}
	return e, err
}

// Update changes an endpoint. Enabling it again clears its failures.
func (s *Service) Update(ctx context.Context, actor audit.Actor, id int64, u EndpointUpdate) (*Endpoint, error) {
	var fields []string
	if u.URL != nil {
		if err := s.checkURL(*u.URL); err != nil {
			return nil, err
		}
		fields = append(fields, "url")
	}
	if u.Description != nil {
		if err := checkDescription(*u.Description); err != nil {
			return nil, err
		}
		fields = append(fields, "description")
	}
	var events []string
	if u.Events != nil {
		var err error
		if events, err = checkEvents(*u.Events); err != nil {
			return nil, err
		}
		fields = append(fields, "events")
	}
	if u.Enabled != nil {
		fields = append(fields, "enabled")
	}
	var e *Endpoint
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = scanEndpoint(tx.QueryRow(ctx, `
			UPDATE webhook_endpoints SET url = coalesce($2, url), description = coalesce($3, description),
				events = coalesce($4, events), enabled = coalesce($5, enabled),
				disabled_reason = CASE WHEN $5 THEN '' ELSE disabled_reason END,
				failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
				updated_at = now()
			WHERE id = $1 RETURNING `+endpointColumns, id, u.URL, u.Description, events, u.Enabled))
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return err
			}
			return fmt.Errorf("webhooks: update endpoint: %w", err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "webhook.update", ObjectType: "webhook",
			ObjectID: strconv.FormatInt(id, 10), Summary: map[string]any{"fields": fields}})
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Delete removes an endpoint and its log.
func (s *Service) Delete(ctx context.Context, actor audit.Actor, id int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("webhooks: delete endpoint: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "webhook.delete", ObjectType: "webhook",
			ObjectID: strconv.FormatInt(id, 10)})
	})
}

// MaxOverlap is the longest a rotated-out secret keeps signing.
const MaxOverlap = 7 * 24 * time.Hour

// RotateSecret gives an endpoint a new secret and returns it. The old one
// keeps signing beside it (a second v1= signature) for overlap, so the
// receiver can switch without losing a delivery.
func (s *Service) RotateSecret(ctx context.Context, actor audit.Actor, id int64, overlap time.Duration) (string, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return "", invalid.Field("overlap_seconds", "must be between 0 and 604800 (7 days)")
	}
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $3,
			secret = $2, updated_at = now() WHERE id = $1`, id, s.seal(id, secret), s.now().Add(overlap))
		if err != nil {
			return fmt.Errorf("webhooks: rotate secret: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "webhook.rotate_secret", ObjectType: "webhook",
			ObjectID: strconv.FormatInt(id, 10), Summary: map[string]any{"overlap_seconds": int(overlap.Seconds())}})
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}
