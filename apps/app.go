// Package apps owns the apps table: the company's sites and mobile apps, each
// with its provider credentials, VAPID key pair and identity-verification
// secret, sealed at rest with a key derived from HERALD_SECRET.
package apps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/secrets"
)

// App is a site or mobile app that subscribers' devices belong to.
type App struct {
	ID             int64  `json:"id"`
	Slug           string `json:"slug"`
	Name           string `json:"name"`
	VAPIDPublicKey string `json:"vapid_public_key"`
	// Who sends, as the subscriber pages show it (see Branding).
	CompanyName string `json:"company_name"`
	PrivacyURL  string `json:"privacy_url"`
	ImprintURL  string `json:"imprint_url"`
	AccentColor string `json:"accent_color"`
	// LogoType is the uploaded logo's type, "" without one.
	LogoType  string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Secrets are an app's sealed settings.
type Secrets struct {
	Credentials delivery.Credentials `json:"credentials"`
	// IdentitySecret is the key an app's backend uses to compute
	// HMAC-SHA256(IdentitySecret, external_id) for identity verification.
	IdentitySecret string `json:"identity_secret"`
}

// ErrNotFound is returned when no app has the slug or id.
var ErrNotFound = errors.New("apps: not found")

// DefaultSlug names the app created on first start.
const DefaultSlug = "default"

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Store reads and writes apps, sealing their secrets.
type Store struct {
	sealer *secrets.Sealer
}

// NewStore returns a Store sealing with a key derived from master.
func NewStore(master []byte) *Store {
	return &Store{sealer: secrets.NewSealer(master, "apps/secrets")}
}

// Create makes an app with a fresh VAPID key pair and identity secret.
func (s *Store) Create(ctx context.Context, db database.DB, slug, name, vapidSubject string) (*App, error) {
	if !slugRE.MatchString(slug) {
		return nil, invalid.Field("slug", "must be 1-63 lowercase letters, digits or dashes")
	}
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return nil, fmt.Errorf("apps: generate vapid keys: %w", err)
	}
	sec := Secrets{
		Credentials:    delivery.Credentials{VAPID: &delivery.VAPIDKeys{PublicKey: pub, PrivateKey: priv, Subject: vapidSubject}},
		IdentitySecret: randomHex(32),
	}
	var a App
	err = db.QueryRow(ctx, `INSERT INTO apps (slug, name, vapid_public_key, secrets) VALUES ($1, $2, $3, '')
		RETURNING id, slug, name, vapid_public_key, created_at, updated_at`, slug, name, pub).
		Scan(&a.ID, &a.Slug, &a.Name, &a.VAPIDPublicKey, &a.CreatedAt, &a.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("apps: create %s: %w", slug, err)
	}
	if err := s.SetSecrets(ctx, db, a.ID, &sec); err != nil {
		return nil, err
	}
	return &a, nil
}

// EnsureDefault returns the default app, creating it (and so the VAPID keys)
// on first start. Concurrent starts create it once.
func (s *Store) EnsureDefault(ctx context.Context, db database.DB, vapidSubject string) (*App, error) {
	a, err := Get(ctx, db, DefaultSlug)
	if !errors.Is(err, ErrNotFound) {
		return a, err
	}
	a, err = s.Create(ctx, db, DefaultSlug, "Default app", vapidSubject)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Get(ctx, db, DefaultSlug)
	}
	return a, err
}

// Get returns the app with slug.
func Get(ctx context.Context, db database.DB, slug string) (*App, error) {
	return get(ctx, db, "slug = $1", slug)
}

// GetByID returns the app with id.
func GetByID(ctx context.Context, db database.DB, id int64) (*App, error) {
	return get(ctx, db, "id = $1", id)
}

// List returns every app, by slug.
func List(ctx context.Context, db database.DB) ([]App, error) {
	rows, err := db.Query(ctx, `SELECT `+appColumns+` FROM apps ORDER BY slug`)
	if err != nil {
		return nil, fmt.Errorf("apps: list: %w", err)
	}
	defer rows.Close()
	out := []App{}
	for rows.Next() {
		var a App
		if err := rows.Scan(appFields(&a)...); err != nil {
			return nil, fmt.Errorf("apps: unable to fetch app: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("apps: unable to fetch app: %w", err)
	}
	return out, nil
}

const appColumns = `id, slug, name, vapid_public_key, company_name, privacy_url, imprint_url, accent_color,
	coalesce(logo_type, ''), created_at, updated_at`

func appFields(a *App) []any {
	return []any{&a.ID, &a.Slug, &a.Name, &a.VAPIDPublicKey, &a.CompanyName, &a.PrivacyURL, &a.ImprintURL, &a.AccentColor,
		&a.LogoType, &a.CreatedAt, &a.UpdatedAt}
}

func get(ctx context.Context, db database.DB, where string, arg any) (*App, error) {
	var a App
	err := db.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE `+where, arg).Scan(appFields(&a)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("apps: get: %w", err)
	}
	return &a, nil
}

// Secrets opens an app's sealed secrets.
func (s *Store) Secrets(ctx context.Context, db database.DB, appID int64) (*Secrets, error) {
	var sealed []byte
	if err := db.QueryRow(ctx, `SELECT secrets FROM apps WHERE id = $1`, appID).Scan(&sealed); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("apps: read secrets: %w", err)
	}
	plain, err := s.sealer.Open(sealed, additional(appID))
	if err != nil {
		return nil, fmt.Errorf("apps: open secrets of app %d: %w", appID, err)
	}
	var sec Secrets
	if err := json.Unmarshal(plain, &sec); err != nil {
		return nil, fmt.Errorf("apps: decode secrets: %w", err)
	}
	return &sec, nil
}

// SetSecrets seals and stores an app's secrets.
func (s *Store) SetSecrets(ctx context.Context, db database.DB, appID int64, sec *Secrets) error {
	plain, err := json.Marshal(sec)
	if err != nil {
		return fmt.Errorf("apps: encode secrets: %w", err)
	}
	pub := ""
	if sec.Credentials.VAPID != nil {
		pub = sec.Credentials.VAPID.PublicKey
	}
	_, err = db.Exec(ctx, `UPDATE apps SET secrets = $2, vapid_public_key = coalesce(nullif($3, ''), vapid_public_key),
		updated_at = now() WHERE id = $1`, appID, s.sealer.Seal(plain, additional(appID)), pub)
	if err != nil {
		return fmt.Errorf("apps: store secrets: %w", err)
	}
	return nil
}

// CreateApp is Create for an actor: in its own transaction, with its audit
// entry.
func (s *Store) CreateApp(ctx context.Context, pool database.Pool, actor audit.Actor, slug, name, vapidSubject string) (*App, error) {
	var a *App
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if a, err = s.Create(ctx, tx, slug, name, vapidSubject); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "app.create", ObjectType: "app", ObjectID: a.Slug})
	})
	return a, err
}

// UpdateSecrets changes an app's secrets under a row lock, so that two
// concurrent changes (say, APNs and FCM credentials) do not undo each other,
// and records c (what changed, never the secrets) for actor in the same
// transaction.
func (s *Store) UpdateSecrets(ctx context.Context, pool database.Pool, actor audit.Actor, c audit.Change, appID int64, change func(*Secrets) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM apps WHERE id = $1 FOR UPDATE`, appID); err != nil {
			return fmt.Errorf("apps: lock app %d: %w", appID, err)
		}
		sec, err := s.Secrets(ctx, tx, appID)
		if err != nil {
			return err
		}
		if err := change(sec); err != nil {
			return err
		}
		if err := s.SetSecrets(ctx, tx, appID, sec); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, c)
	})
}

// additional binds sealed secrets to their row, so they cannot be swapped.
func additional(appID int64) []byte { return []byte("app:" + strconv.FormatInt(appID, 10)) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
