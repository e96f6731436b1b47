package apps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/brand"
	"github.com/herald-im/herald/database"
)

// Branding changes what an app's subscriber pages show of who sends: the
// app's name, the company behind it, the links to its privacy policy and
// imprint, and its colour. Nil fields are left alone; "" clears one.
type Branding struct {
	Name        *string `json:"name"`
	CompanyName *string `json:"company_name"`
	PrivacyURL  *string `json:"privacy_url"`
	ImprintURL  *string `json:"imprint_url"`
	AccentColor *string `json:"accent_color"`
}

// Validate checks b.
func (b *Branding) Validate() error {
	if b.Name != nil {
		if err := brand.ValidateName("name", *b.Name, true); err != nil {
			return err
		}
	}
	if b.CompanyName != nil {
		if err := brand.ValidateName("company_name", *b.CompanyName, false); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		field string
		link  *string
	}{{"privacy_url", b.PrivacyURL}, {"imprint_url", b.ImprintURL}} {
		if f.link != nil {
			if err := brand.ValidateLink(f.field, *f.link); err != nil {
				return err
			}
		}
	}
	if b.AccentColor != nil {
		return brand.ValidateColor("accent_color", *b.AccentColor)
	}
	return nil
}

// UpdateBranding changes an app's branding, with its audit entry, and
// returns the app.
func (s *Store) UpdateBranding(ctx context.Context, pool database.Pool, actor audit.Actor, slug string, b Branding) (*App, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	var a *App
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE apps SET name = coalesce($2, name), company_name = coalesce($3, company_name),
				privacy_url = coalesce($4, privacy_url), imprint_url = coalesce($5, imprint_url),
				accent_color = coalesce($6, accent_color), updated_at = now()
			WHERE slug = $1`, slug, b.Name, b.CompanyName, b.PrivacyURL, b.ImprintURL, b.AccentColor)
		if err != nil {
			return fmt.Errorf("apps: update branding of %s: %w", slug, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if a, err = Get(ctx, tx, slug); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "app.branding", ObjectType: "app", ObjectID: slug,
			Summary: map[string]any{"fields": b.changed()}})
	})
	return a, err
}

// changed names the fields b sets, for the audit log.
func (b *Branding) changed() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"name", b.Name != nil}, {"company_name", b.CompanyName != nil}, {"privacy_url", b.PrivacyURL != nil},
		{"imprint_url", b.ImprintURL != nil}, {"accent_color", b.AccentColor != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// SetLogo stores an app's logo (PNG, JPEG or WebP, as read from its bytes,
// at most brand.MaxLogoBytes), or removes it when data is nil.
func (s *Store) SetLogo(ctx context.Context, pool database.Pool, actor audit.Actor, slug string, data []byte) (*App, error) {
	var typ *string
	if data != nil {
		t, err := brand.LogoType("logo", data)
		if err != nil {
			return nil, err
		}
		typ = &t
	}
	var a *App
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE apps SET logo = $2, logo_type = $3, updated_at = now() WHERE slug = $1`, slug, data, typ)
		if err != nil {
			return fmt.Errorf("apps: set logo of %s: %w", slug, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if a, err = Get(ctx, tx, slug); err != nil {
			return err
		}
		action := "app.logo_set"
		if data == nil {
			action = "app.logo_remove"
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: action, ObjectType: "app", ObjectID: slug,
			Summary: map[string]any{"bytes": len(data)}})
	})
	return a, err
}

// ErrNoLogo is returned by Logo for an app without one.
var ErrNoLogo = errors.New("apps: no logo")

// Logo returns an app's logo, its type and when it last changed.
func Logo(ctx context.Context, db database.DB, slug string) (data []byte, contentType string, changed time.Time, err error) {
	var typ *string
	err = db.QueryRow(ctx, `SELECT logo, logo_type, updated_at FROM apps WHERE slug = $1`, slug).Scan(&data, &typ, &changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("apps: logo of %s: %w", slug, err)
	}
	if typ == nil {
		return nil, "", changed, ErrNoLogo
	}
	return data, *typ, changed, nil
}
