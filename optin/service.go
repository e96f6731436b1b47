package optin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// ConfirmationInterval is the rule for asking twice: a person who asks
// again while their request is pending gets a new confirmation only once the
// last request is this old. Sooner it is the same request (a double tap, a
// reloaded page, an app retrying) and the confirmation on its way answers
// it. A request after leaving is always new.
const ConfirmationInterval = time.Minute

// QueueOptIn is the River queue for confirmations, apart from campaigns so a
// huge broadcast never delays someone waiting for their confirmation.
const QueueOptIn = "optin"

// Config holds the opt-in settings.
type Config struct {
	PublicURL           string
	Secret              []byte
	ConfirmTokenTTL     time.Duration
	UnsubscribeTokenTTL time.Duration
	SubscriberTokenTTL  time.Duration
	PendingPurgeAfter   time.Duration
	// WebPush is where Web Push endpoints may point; a subscription whose
	// endpoint it refuses is refused. nil allows any (tests).
	WebPush *delivery.EndpointPolicy
	// Attachments is where conversation attachments are kept, for export
	// and erasure; nil means PostgreSQL.
	Attachments conversations.Storage
	// OnErase run in an erasure's transaction, for data kept elsewhere
	// (webhook deliveries about the person).
	OnErase []func(ctx context.Context, tx pgx.Tx, subscriberID int64) error
	// Now is the clock; nil means time.Now. Tests move it to expire links.
	Now func() time.Time
}

// Service runs the opt-in flows.
type Service struct {
	pool    *pgxpool.Pool
	apps    *apps.Store
	senders *apps.Senders
	mailer  Mailer
	cfg     Config
	signer  *signer
	logger  *slog.Logger
	now     func() time.Time
	river   *river.Client[pgx.Tx]
}

// NewService returns a ready Service. inserter is the River client the
// service inserts jobs with, in the transactions of its changes: an
// insert-only client will do (a client needs its workers when it is made,
// and the workers need the service). mailer may be nil.
func NewService(pool *pgxpool.Pool, inserter *river.Client[pgx.Tx], appStore *apps.Store, senders *apps.Senders, mailer Mailer, cfg Config, logger *slog.Logger) *Service {
	s := &Service{
		pool: pool, river: inserter, apps: appStore, senders: senders, mailer: mailer, cfg: cfg,
		signer: newSigner(cfg.Secret), logger: logger, now: cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// ErrIdentity is returned when an app's identity proof does not match.
var ErrIdentity = errors.New("optin: identity verification failed")

// ErrForbidden is returned when a list cannot be joined this way.
var ErrForbidden = errors.New("optin: this list can only be joined from a verified app identity")

// DeviceRequest is the device part of a subscribe request.
type DeviceRequest struct {
	Platform    string `json:"platform"`
	Token       string `json:"token"`
	BundleID    string `json:"bundle_id"`
	Environment string `json:"environment"`
	// Subscription is PushSubscription.toJSON() for Web Push.
	Subscription *struct {
		Endpoint string `json:"endpoint"`
		// ExpirationTime is part of PushSubscription.toJSON(); browsers send
		// null, and push services tell us of an expiry with 404/410 anyway.
		ExpirationTime *float64 `json:"expirationTime"`
		Keys           struct {
			P256dh string `json:"p256dh"`
			Auth   string `json:"auth"`
		} `json:"keys"`
	} `json:"subscription"`
}

// Identity says who is asking: an app user proven by an HMAC of their
// external id, a returning web subscriber's token, or nobody yet.
type Identity struct {
	App             string `json:"app"`
	ExternalID      string `json:"external_id"`
	IdentityHMAC    string `json:"identity_hmac"`
	SubscriberToken string `json:"subscriber_token"`
}

// SubscribeRequest asks to join a list from a device.
type SubscribeRequest struct {
	Identity
	List           string        `json:"list"`
	Email          string        `json:"email"`
	Locale         string        `json:"locale"`
	Timezone       string        `json:"timezone"`
	ConsentVersion int           `json:"consent_version"`
	Device         DeviceRequest `json:"device"`
}

// SubscribeResult says what happened.
type SubscribeResult struct {
	SubscriberID int64                        `json:"-"`
	DeviceID     int64                        `json:"-"`
	Status       subscribers.MembershipStatus `json:"status"`
	// SubscriberToken is set when a new anonymous subscriber was created or
	// a returning browser re-identified; store it to manage preferences.
	SubscriberToken string `json:"subscriber_token,omitempty"`
}

// Client is where a request came from, for consent records.
type Client struct {
	IP        netip.Addr
	UserAgent string
}

func (r *SubscribeRequest) deviceParams() (subscribers.DeviceParams, error) {
	d := r.Device
	p := subscribers.DeviceParams{Platform: delivery.Platform(d.Platform), Token: strings.TrimSpace(d.Token),
		APNsTopic: d.BundleID, APNsEnvironment: d.Environment}
	if p.Platform == delivery.PlatformWebPush {
		if d.Subscription == nil {
			return p, invalid.Field("device.subscription", "is required for webpush: send PushSubscription.toJSON()")
		}
		p.Token, p.P256dh, p.Auth = d.Subscription.Endpoint, d.Subscription.Keys.P256dh, d.Subscription.Keys.Auth
	}
	return p, p.Validate("device.")
}

// checkEndpoint refuses a Web Push endpoint that is not a push service's.
func (s *Service) checkEndpoint(p subscribers.DeviceParams) error {
	if p.Platform != delivery.PlatformWebPush || s.cfg.WebPush == nil {
		return nil
	}
	if err := s.cfg.WebPush.CheckURL(p.Token); err != nil {
		return invalid.Field("device.subscription.endpoint", strings.TrimPrefix(err.Error(), "delivery: web push endpoint refused: "))
	}
	return nil
}

// Subscribe registers the device and asks for membership. With double
// opt-in the membership is pending and a confirmation job is inserted in the
// same transaction.
func (s *Service) Subscribe(ctx context.Context, actor audit.Actor, req SubscribeRequest, client Client) (*SubscribeResult, error) {
	devParams, err := req.deviceParams()
	if err != nil {
		return nil, err
	}
	if err := s.checkEndpoint(devParams); err != nil {
		return nil, err
	}
	profile := subscribers.SubscriberParams{}
	if req.Email != "" {
		profile.Email = &req.Email
	}
	if req.Locale != "" {
		profile.Locale = &req.Locale
	}
	if req.Timezone != "" {
		profile.Timezone = &req.Timezone
	}
	if err := profile.Validate(); err != nil {
		return nil, err
	}
	app, err := s.app(ctx, req.App)
	if err != nil {
		return nil, err
	}
	list, err := subscribers.GetList(ctx, s.pool, req.List)
	if errors.Is(err, subscribers.ErrNotFound) {
		return nil, invalid.Field("list", "no such list")
	} else if err != nil {
		return nil, err
	}
	version := req.ConsentVersion
	if version == 0 {
		version = list.ConsentVersion
	}
	if version < 1 || version > list.ConsentVersion {
		return nil, invalid.Fieldf("consent_version", "must be between 1 and %d, the version of the consent text shown", list.ConsentVersion)
	}
	verified, err := s.verifyIdentity(ctx, app.ID, req.Identity)
	if err != nil {
		return nil, err
	}
	if list.Visibility == "private" && !verified {
		return nil, ErrForbidden
	}
	source := subscribers.SourceWeb
	if devParams.Platform != delivery.PlatformWebPush {
		source = subscribers.SourceApp
	}
	ev := subscribers.Evidence{Source: source, IP: client.IP, UserAgent: client.UserAgent}

	res := &SubscribeResult{}
	body := func(tx pgx.Tx) error {
		var sub *subscribers.Subscriber
		how := proofNone
		switch {
		case verified:
			how = proofIdentity
			sub, err = subscribers.UpsertByExternalID(ctx, tx, req.ExternalID, profile)
		case req.SubscriberToken != "":
			how = proofToken
			sub, err = s.subscriberByToken(ctx, tx, req.SubscriberToken)
			if err == nil {
				sub, err = subscribers.Update(ctx, tx, sub.ID, profile)
			}
		default:
			sub, res.SubscriberToken, err = s.anonymousSubscriber(ctx, tx, app.ID, devParams, profile)
		}
		if err != nil {
			return err
		}
		if sub.State != subscribers.StateActive {
			return invalid.Field("subscriber", "is blocked or erased and cannot subscribe")
		}
		dev, where, err := s.placeDevice(ctx, tx, sub.ID, how, app.ID, devParams)
		if err != nil {
			return err
		}
		asked, err := subscribers.Request(ctx, tx, list, sub.ID, ConfirmationInterval)
		if err != nil {
			return err
		}
		res.SubscriberID, res.Status = sub.ID, asked.Status
		if where == placed {
			res.DeviceID = dev.ID
		}
		if !asked.Changed {
			return nil
		}
		if err := subscribers.RecordConsent(ctx, tx, sub.ID, subscribers.ActionOptInRequest, ev, version, list.ID); err != nil {
			return err
		}
		if asked.Status == subscribers.StatusConfirmed {
			return subscribers.RecordConsent(ctx, tx, sub.ID, subscribers.ActionConfirm, ev, version, list.ID)
		}
		var jobs []river.InsertManyParams
		if where == placed {
			jobs = append(jobs, river.InsertManyParams{Args: SendConfirmationArgs{SubscriberID: sub.ID, ListID: list.ID,
				DeviceID: dev.ID, RequestedAt: asked.PendingAt}})
		}
		if sub.Email != nil && s.mailer != nil {
			jobs = append(jobs, river.InsertManyParams{Args: SendConfirmationEmailArgs{SubscriberID: sub.ID, ListID: list.ID, RequestedAt: asked.PendingAt}})
		}
		if len(jobs) == 0 {
			return nil
		}
		if _, err := s.river.InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("optin: insert confirmation job: %w", err)
		}
		return nil
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := body(tx); err != nil {
			return err
		}
		return audit.Record(ctx, tx, as(actor, res.SubscriberID), audit.Change{Action: "subscriber.subscribe", ObjectType: "subscriber",
			ObjectID: strconv.FormatInt(res.SubscriberID, 10), Summary: map[string]any{"list_id": list.ID, "status": res.Status,
				"platform": devParams.Platform, "identity_verified": verified, "subscriber_id": res.SubscriberID}})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Service) app(ctx context.Context, slug string) (*apps.App, error) {
	if slug == "" {
		slug = apps.DefaultSlug
	}
	app, err := apps.Get(ctx, s.pool, slug)
	if errors.Is(err, apps.ErrNotFound) {
		return nil, invalid.Field("app", "no such app")
	}
	return app, err
}

// verifyIdentity checks HMAC-SHA256(app identity secret, external_id). It
// reports false when no external id was given.
func (s *Service) verifyIdentity(ctx context.Context, appID int64, id Identity) (bool, error) {
	if id.ExternalID == "" {
		if id.IdentityHMAC != "" {
			return false, invalid.Field("external_id", "is required with identity_hmac")
		}
		return false, nil
	}
	if err := subscribers.ValidateExternalID("external_id", id.ExternalID); err != nil {
		return false, err
	}
	given, err := hex.DecodeString(id.IdentityHMAC)
	if err != nil || len(given) != sha256.Size {
		return false, ErrIdentity
	}
	sec, err := s.apps.Secrets(ctx, s.pool, appID)
	if err != nil {
		return false, err
	}
	m := hmac.New(sha256.New, []byte(sec.IdentitySecret))
	m.Write([]byte(id.ExternalID))
	if !hmac.Equal(m.Sum(nil), given) {
		return false, ErrIdentity
	}
	return true, nil
}

// IdentityHMAC computes what an app's backend sends as identity_hmac.
func IdentityHMAC(identitySecret, externalID string) string {
	m := hmac.New(sha256.New, []byte(identitySecret))
	m.Write([]byte(externalID))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Service) subscriberByToken(ctx context.Context, db database.DB, token string) (*subscribers.Subscriber, error) {
	var id int64
	err := db.QueryRow(ctx, `SELECT subscriber_id FROM subscriber_tokens WHERE token_hash = $1 AND expires_at > now()`,
		hashToken(token)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTokenInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("optin: subscriber token: %w", err)
	}
	return subscribers.Get(ctx, db, id)
}

// anonymousSubscriber finds the subscriber a device already belongs to (the
// browser holds the very subscription, keys included) or creates one, and
// issues a new subscriber token.
func (s *Service) anonymousSubscriber(ctx context.Context, tx pgx.Tx, appID int64, d subscribers.DeviceParams, profile subscribers.SubscriberParams) (*subscribers.Subscriber, string, error) {
	var existing int64
	err := pgx.ErrNoRows
	if d.Platform == delivery.PlatformWebPush {
		// Only a browser holding the very subscription (its auth secret
		// included) is taken for the anonymous subscriber who registered it:
		// an APNs or FCM token alone proves nothing (see placeDevice).
		err = tx.QueryRow(ctx, `SELECT d.subscriber_id FROM devices d JOIN subscribers s ON s.id = d.subscriber_id
			WHERE d.app_id = $1 AND d.platform = 'webpush' AND d.token = $2 AND s.external_id IS NULL AND s.state = 'active'
			AND d.webpush_p256dh = $3 AND d.webpush_auth = $4`,
			appID, d.Token, d.P256dh, d.Auth).Scan(&existing)
	}
	var sub *subscribers.Subscriber
	switch {
	case err == nil:
		sub, err = subscribers.Update(ctx, tx, existing, profile)
	case errors.Is(err, pgx.ErrNoRows):
		sub, err = subscribers.Create(ctx, tx, profile)
	default:
		err = fmt.Errorf("optin: find the device's subscriber: %w", err)
	}
	if err != nil {
		return nil, "", err
	}
	token := randomToken()
	if _, err := tx.Exec(ctx, `INSERT INTO subscriber_tokens (token_hash, subscriber_id, expires_at) VALUES ($1, $2, $3)`,
		hashToken(token), sub.ID, s.now().Add(s.cfg.SubscriberTokenTTL)); err != nil {
		return nil, "", fmt.Errorf("optin: subscriber token: %w", err)
	}
	return sub, token, nil
}

// Identify resolves a subscriber from an identity (for the preference API).
func (s *Service) Identify(ctx context.Context, id Identity) (int64, error) {
	if id.SubscriberToken != "" {
		sub, err := s.subscriberByToken(ctx, s.pool, id.SubscriberToken)
		if err != nil {
			return 0, err
		}
		return sub.ID, nil
	}
	app, err := s.app(ctx, id.App)
	if err != nil {
		return 0, err
	}
	ok, err := s.verifyIdentity(ctx, app.ID, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, invalid.Field("subscriber_token", "send a subscriber_token, or an external_id with its identity_hmac")
	}
	var subID int64
	err = s.pool.QueryRow(ctx, `SELECT id FROM subscribers WHERE external_id = $1`, id.ExternalID).Scan(&subID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, subscribers.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("optin: identify: %w", err)
	}
	return subID, nil
}

// as is the actor of a change to subscriber id: a public caller becomes
// the subscriber its request proved; staff stay who they are.
func as(actor audit.Actor, id int64) audit.Actor {
	if actor.Kind == audit.KindSubscriber && actor.ID == 0 {
		return actor.As(id)
	}
	return actor
}
