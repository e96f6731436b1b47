package conversations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// CannedResponse is a prepared answer agents insert by its short code.
// Its body may hold placeholders: {{subscriber.email}},
// {{subscriber.external_id}}, {{subscriber.<attribute>}} and {{agent.name}}.
type CannedResponse struct {
	ID        int64     `json:"id"`
	ShortCode string    `json:"short_code"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CannedParams creates or changes a canned response; nil fields are left
// alone on update.
type CannedParams struct {
	ShortCode *string `json:"short_code"`
	Title     *string `json:"title"`
	Body      *string `json:"body"`
}

var shortCodePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

func (p *CannedParams) validate(create bool) error {
	if create && (p.ShortCode == nil || p.Title == nil || p.Body == nil) {
		return invalid.Field("short_code", "short_code, title and body are required")
	}
	if p.ShortCode != nil && !shortCodePattern.MatchString(*p.ShortCode) {
		return invalid.Field("short_code", "1 to 40 lower-case letters, digits, _ or -")
	}
	if p.Title != nil {
		t, err := validBody("title", *p.Title, false)
		if err != nil {
			return err
		}
		if len(t) > 200 {
			return invalid.Field("title", "is longer than 200 bytes")
		}
		p.Title = &t
	}
	if p.Body != nil {
		b, err := validBody("body", *p.Body, false)
		if err != nil {
			return err
		}
		p.Body = &b
	}
	return nil
}

const cannedColumns = `id, short_code, title, body, created_at, updated_at`

// CannedResponses lists canned responses by short code, those whose code
// or title starts with prefix if it is not empty.
func (s *Service) CannedResponses(ctx context.Context, prefix string) ([]CannedResponse, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+cannedColumns+` FROM canned_responses
		WHERE $1 = '' OR short_code LIKE $1 || '%' OR lower(title) LIKE lower($1) || '%'
		ORDER BY short_code LIMIT 500`, strings.NewReplacer("%", "", "_", "").Replace(prefix))
	if err != nil {
		return nil, fmt.Errorf("conversations: canned responses: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[CannedResponse])
	if err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch canned response: %w", err)
	}
	return out, nil
}

// CreateCanned adds a canned response.
func (s *Service) CreateCanned(ctx context.Context, actor audit.Actor, p CannedParams) (*CannedResponse, error) {
	if err := p.validate(true); err != nil {
		return nil, err
	}
	var c CannedResponse
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO canned_responses (short_code, title, body) VALUES ($1, $2, $3)
			RETURNING `+cannedColumns, *p.ShortCode, *p.Title, *p.Body).Scan(&c.ID, &c.ShortCode, &c.Title, &c.Body, &c.CreatedAt, &c.UpdatedAt)
		if err != nil {
			return cannedError(err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "canned_response.create", ObjectType: "canned_response",
			ObjectID: fmt.Sprint(c.ID), Summary: map[string]any{"short_code": c.ShortCode}})
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func cannedError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return invalid.Field("short_code", "is taken")
	}
	return fmt.Errorf("conversations: canned response: %w", err)
}

// UpdateCanned changes a canned response.
func (s *Service) UpdateCanned(ctx context.Context, actor audit.Actor, id int64, p CannedParams) (*CannedResponse, error) {
	if err := p.validate(false); err != nil {
		return nil, err
	}
	var c CannedResponse
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE canned_responses SET short_code = coalesce($2, short_code), title = coalesce($3, title),
			body = coalesce($4, body), updated_at = now() WHERE id = $1 RETURNING `+cannedColumns, id, p.ShortCode, p.Title, p.Body).
			Scan(&c.ID, &c.ShortCode, &c.Title, &c.Body, &c.CreatedAt, &c.UpdatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return cannedError(err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "canned_response.update", ObjectType: "canned_response",
			ObjectID: fmt.Sprint(id), Summary: map[string]any{"short_code": c.ShortCode}})
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// DeleteCanned removes a canned response.
func (s *Service) DeleteCanned(ctx context.Context, actor audit.Actor, id int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM canned_responses WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("conversations: delete canned response: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "canned_response.delete", ObjectType: "canned_response",
			ObjectID: fmt.Sprint(id)})
	})
}

var placeholder = regexp.MustCompile(`\{\{\s*([a-z_]+)\.([A-Za-z0-9_]+)\s*\}\}`)

// renderCanned fills a canned response's placeholders for a conversation.
// A placeholder without a value becomes empty text.
func (s *Service) renderCanned(ctx context.Context, tx pgx.Tx, id int64, conv *Conversation, author Author) (string, error) {
	var body string
	var email, external *string
	var attrs []byte
	err := tx.QueryRow(ctx, `SELECT c.body, s.email, s.external_id, s.attributes FROM canned_responses c, subscribers s
		WHERE c.id = $1 AND s.id = $2`, id, conv.SubscriberID).Scan(&body, &email, &external, &attrs)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", invalid.Field("canned_response_id", "no such canned response")
	}
	if err != nil {
		return "", fmt.Errorf("conversations: canned response: %w", err)
	}
	var attributes map[string]any
	if err := json.Unmarshal(attrs, &attributes); err != nil {
		return "", fmt.Errorf("conversations: subscriber attributes: %w", err)
	}
	return placeholder.ReplaceAllStringFunc(body, func(p string) string {
		m := placeholder.FindStringSubmatch(p)
		switch {
		case m[1] == "agent" && m[2] == "name":
			return author.Name
		case m[1] == "subscriber" && m[2] == "email" && email != nil:
			return *email
		case m[1] == "subscriber" && m[2] == "external_id" && external != nil:
			return *external
		case m[1] == "subscriber":
			if v, ok := attributes[m[2]]; ok {
				if str, ok := v.(string); ok {
					return str
				}
				return fmt.Sprint(v)
			}
		}
		return ""
	}), nil
}
