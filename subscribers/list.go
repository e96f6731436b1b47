package subscribers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/brand"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// List is a subscription list.
type List struct {
	ID          int64  `json:"id"`
	Slug        string `json:"slug"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Visibility "public" lists have a hosted opt-in page; "private" ones are
	// joined only through verified app identity or the admin API.
	Visibility string `json:"visibility"`
	// OptIn "double" asks the subscriber to confirm through their own channel.
	OptIn string `json:"optin"`
	// ConsentText is what subscribers see when they opt in; changing it bumps
	// ConsentVersion, which consent records cite.
	ConsentText    string `json:"consent_text"`
	ConsentVersion int    `json:"consent_version"`
	// AccentColor (#rrggbb, or "" for the app's) colours the list's pages.
	AccentColor string `json:"accent_color"`
	// LogoType is the list's own logo's type, "" without one (its pages
	// then show the app's).
	LogoType string `json:"-"`
	// HasLogo is LogoType != "".
	HasLogo   bool      `json:"has_logo"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ListParams creates or changes a list; nil fields are left alone on update.
type ListParams struct {
	Slug        *string `json:"slug"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Visibility  *string `json:"visibility"`
	OptIn       *string `json:"optin"`
	ConsentText *string `json:"consent_text"`
	AccentColor *string `json:"accent_color"`
}

var listSlugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks p; creating requires slug and name.
func (p *ListParams) Validate(creating bool) error {
	if p.Slug != nil || creating {
		if p.Slug == nil || !listSlugRE.MatchString(*p.Slug) {
			return invalid.Field("slug", "must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit")
		}
	}
	if p.Name != nil || creating {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if err := ValidateText("name", name, 200, true); err != nil {
			return err
		}
	}
	if p.Description != nil {
		if err := ValidateText("description", *p.Description, 2000, false); err != nil {
			return err
		}
	}
	if p.AccentColor != nil {
		if err := brand.ValidateColor("accent_color", *p.AccentColor); err != nil {
			return err
		}
	}
	if p.ConsentText != nil {
		if err := ValidateText("consent_text", *p.ConsentText, 5000, false); err != nil {
			return err
		}
	}
	if p.Visibility != nil && *p.Visibility != "public" && *p.Visibility != "private" {
		return invalid.Field("visibility", "must be public or private")
	}
	if p.OptIn != nil && *p.OptIn != "single" && *p.OptIn != "double" {
		return invalid.Field("optin", "must be single or double")
	}
	return nil
}

const listColumns = `id, slug, name, description, visibility, optin, consent_text, consent_version, accent_color,
	coalesce(logo_type, ''), created_at, updated_at`

func scanList(row pgx.Row) (*List, error) {
	var l List
	err := row.Scan(&l.ID, &l.Slug, &l.Name, &l.Description, &l.Visibility, &l.OptIn, &l.ConsentText,
		&l.ConsentVersion, &l.AccentColor, &l.LogoType, &l.CreatedAt, &l.UpdatedAt)
	l.HasLogo = l.LogoType != ""
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &l, err
}

// CreateList inserts a list.
func CreateList(ctx context.Context, db database.DB, p ListParams) (*List, error) {
	if err := p.Validate(true); err != nil {
		return nil, err
	}
	l, err := scanList(db.QueryRow(ctx, `INSERT INTO lists (slug, name, description, visibility, optin, consent_text, accent_color)
		VALUES ($1, $2, coalesce($3, ''), coalesce($4, 'public'), coalesce($5, 'double'), coalesce($6, ''), coalesce($7, ''))
		RETURNING `+listColumns, p.Slug, p.Name, p.Description, p.Visibility, p.OptIn, p.ConsentText, p.AccentColor))
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("%w: list %q", ErrConflict, *p.Slug)
	}
	if err != nil {
		return nil, fmt.Errorf("subscribers: create list: %w", err)
	}
	return l, nil
}

// GetList returns a list by slug.
func GetList(ctx context.Context, db database.DB, slug string) (*List, error) {
	l, err := scanList(db.QueryRow(ctx, `SELECT `+listColumns+` FROM lists WHERE slug = $1`, slug))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("subscribers: get list %q: %w", slug, err)
	}
	return l, err
}

// PublicListsByID returns, of the lists with the given ids, the public
// ones, by id: one query for a page that shows several.
func PublicListsByID(ctx context.Context, db database.DB, ids []int64) (map[int64]*List, error) {
	out := map[int64]*List{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT `+listColumns+` FROM lists WHERE id = ANY($1) AND visibility = 'public'`, ids)
	if err != nil {
		return nil, fmt.Errorf("subscribers: lists by id: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := scanList(rows)
		if err != nil {
			return nil, fmt.Errorf("subscribers: lists by id: %w", err)
		}
		out[l.ID] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subscribers: lists by id: %w", err)
	}
	return out, nil
}

// GetListByID returns a list by id.
func GetListByID(ctx context.Context, db database.DB, id int64) (*List, error) {
	l, err := scanList(db.QueryRow(ctx, `SELECT `+listColumns+` FROM lists WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("subscribers: get list %d: %w", id, err)
	}
	return l, err
}

// Lists returns lists by ascending id; visibility "" means all.
func Lists(ctx context.Context, db database.DB, visibility string, page Page) ([]List, error) {
	rows, err := db.Query(ctx, `SELECT `+listColumns+` FROM lists WHERE id > $1 AND ($2 = '' OR visibility = $2)
		ORDER BY id LIMIT $3`, page.After, visibility, page.limit())
	if err != nil {
		return nil, fmt.Errorf("subscribers: lists: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (List, error) {
		l, err := scanList(r)
		if err != nil {
			return List{}, err
		}
		return *l, nil
	})
	if err != nil {
		return nil, fmt.Errorf("subscribers: lists: %w", err)
	}
	return out, nil
}

// UpdateList changes the given fields. A new consent text bumps the version.
func UpdateList(ctx context.Context, db database.DB, slug string, p ListParams) (*List, error) {
	if err := p.Validate(false); err != nil {
		return nil, err
	}
	l, err := scanList(db.QueryRow(ctx, `UPDATE lists SET
			slug = coalesce($2, slug), name = coalesce($3, name), description = coalesce($4, description),
			visibility = coalesce($5, visibility), optin = coalesce($6, optin),
			consent_version = consent_version + CASE WHEN $7::text IS DISTINCT FROM NULL AND $7 <> consent_text THEN 1 ELSE 0 END,
			consent_text = coalesce($7, consent_text), accent_color = coalesce($8, accent_color), updated_at = now()
		WHERE slug = $1 RETURNING `+listColumns,
		slug, p.Slug, p.Name, p.Description, p.Visibility, p.OptIn, p.ConsentText, p.AccentColor))
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("%w: list %q", ErrConflict, *p.Slug)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("subscribers: update list: %w", err)
	}
	return l, err
}

// DeleteList deletes a list and its memberships; consent records stay as proof.
func DeleteList(ctx context.Context, db database.DB, slug string) error {
	tag, err := db.Exec(ctx, `DELETE FROM lists WHERE slug = $1`, slug)
	if err != nil {
		return fmt.Errorf("subscribers: delete list: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
