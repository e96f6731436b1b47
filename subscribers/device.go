package subscribers

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
)

// Device is one push address of a subscriber.
type Device struct {
	ID              int64             `json:"id"`
	SubscriberID    int64             `json:"subscriber_id"`
	AppID           int64             `json:"app_id"`
	Platform        delivery.Platform `json:"platform"`
	Token           string            `json:"token"`
	APNsTopic       string            `json:"apns_topic,omitempty"`
	APNsEnvironment string            `json:"apns_environment,omitempty"`
	P256dh          string            `json:"p256dh,omitempty"`
	Auth            string            `json:"auth,omitempty"`
	Active          bool              `json:"active"`
	// TestDevice marks a device an admin chose for test sends (a staff
	// member's own phone): it receives them without list consent.
	TestDevice bool      `json:"test_device"`
	CreatedAt  time.Time `json:"created_at"`
	// UpdatedAt is the device's version: a deactivation names the version it
	// saw, so a token refreshed since is not killed.
	UpdatedAt time.Time `json:"updated_at"`
}

// DeviceParams registers a device. For Web Push, Token is the endpoint.
type DeviceParams struct {
	Platform        delivery.Platform
	Token           string
	APNsTopic       string
	APNsEnvironment string
	P256dh          string
	Auth            string
}

var (
	bundleRE    = regexp.MustCompile(`^[A-Za-z0-9.-]{1,155}$`)
	fcmTokenRE  = regexp.MustCompile(`^[A-Za-z0-9_:.\-]+$`)
	apnsTokenRE = regexp.MustCompile(`^[0-9a-fA-F]{64,200}$`)
)

// Validate checks that p can be delivered to; field names are prefixed with
// prefix (e.g. "device.").
func (p *DeviceParams) Validate(prefix string) error {
	switch p.Platform {
	case delivery.PlatformAPNs:
		if !apnsTokenRE.MatchString(p.Token) {
			return invalid.Field(prefix+"token", "must be the APNs device token as hex (64 or more characters)")
		}
		if _, err := hex.DecodeString(p.Token); err != nil {
			return invalid.Field(prefix+"token", "must be hex")
		}
		p.Token = strings.ToLower(p.Token)
		if !bundleRE.MatchString(p.APNsTopic) {
			return invalid.Field(prefix+"bundle_id", "must be the app's bundle id, e.g. com.example.app")
		}
		if p.APNsEnvironment == "" {
			p.APNsEnvironment = "production"
		}
		if p.APNsEnvironment != "production" && p.APNsEnvironment != "sandbox" {
			return invalid.Field(prefix+"environment", "must be production or sandbox")
		}
	case delivery.PlatformFCM:
		if len(p.Token) < 16 || len(p.Token) > 4096 || !fcmTokenRE.MatchString(p.Token) {
			return invalid.Field(prefix+"token", "must be an FCM registration token")
		}
	case delivery.PlatformWebPush:
		u, err := url.Parse(p.Token)
		if err != nil || u.Scheme != "https" || u.Host == "" || len(p.Token) > 2048 || u.User != nil {
			return invalid.Field(prefix+"subscription.endpoint", "must be the https push endpoint of a PushSubscription")
		}
		if err := delivery.ValidateWebPushKeys(p.P256dh, p.Auth); err != nil {
			return invalid.Field(prefix+"subscription.keys", strings.TrimPrefix(err.Error(), "delivery: "))
		}
	default:
		return invalid.Field(prefix+"platform", "must be apns, fcm or webpush")
	}
	return nil
}

const deviceColumns = `id, subscriber_id, app_id, platform, token, coalesce(apns_topic, ''), coalesce(apns_environment, ''),
	coalesce(webpush_p256dh, ''), coalesce(webpush_auth, ''), active, test_device, created_at, updated_at`

func scanDevice(row pgx.Row) (Device, error) {
	var d Device
	err := row.Scan(&d.ID, &d.SubscriberID, &d.AppID, &d.Platform, &d.Token, &d.APNsTopic, &d.APNsEnvironment,
		&d.P256dh, &d.Auth, &d.Active, &d.TestDevice, &d.CreatedAt, &d.UpdatedAt)
	return d, err
}

// DeviceByToken returns the device registered with an app under a
// platform's token (normalised by DeviceParams.Validate first), locked for
// the rest of the transaction so that two registrations of one token are
// decided one after the other.
func DeviceByToken(ctx context.Context, db database.DB, appID int64, p DeviceParams) (*Device, error) {
	if err := p.Validate(""); err != nil {
		return nil, err
	}
	d, err := scanDevice(db.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE app_id = $1 AND platform = $2 AND token = $3 FOR UPDATE`, appID, p.Platform, p.Token))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("subscribers: device by token: %w", err)
	}
	return &d, nil
}

// SameKeys reports whether p names a Web Push subscription with the device's
// keys (always true for other platforms, which have none).
func (d *Device) SameKeys(p DeviceParams) bool {
	return d.P256dh == p.P256dh && d.Auth == p.Auth
}

// RegisterDevice adds a device to a subscriber. Registering the same token
// again updates it; a token registered by another subscriber moves to this
// one. Callers decide first whether the caller may take the device (see
// optin's device ownership rule): a known token is no proof of ownership.
func RegisterDevice(ctx context.Context, db database.DB, subscriberID, appID int64, p DeviceParams) (*Device, error) {
	if err := p.Validate(""); err != nil {
		return nil, err
	}
	d, err := scanDevice(db.QueryRow(ctx, `INSERT INTO devices
			(subscriber_id, app_id, platform, token, apns_topic, apns_environment, webpush_p256dh, webpush_auth)
		VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, ''), nullif($7, ''), nullif($8, ''))
		ON CONFLICT (app_id, platform, token) DO UPDATE SET
			subscriber_id = EXCLUDED.subscriber_id, apns_topic = EXCLUDED.apns_topic,
			test_device = devices.test_device AND devices.subscriber_id = EXCLUDED.subscriber_id,
			apns_environment = EXCLUDED.apns_environment, webpush_p256dh = EXCLUDED.webpush_p256dh,
			webpush_auth = EXCLUDED.webpush_auth, active = true, deactivated_reason = NULL,
			deactivated_at = NULL, updated_at = clock_timestamp()
		RETURNING `+deviceColumns,
		subscriberID, appID, p.Platform, p.Token, p.APNsTopic, p.APNsEnvironment, p.P256dh, p.Auth))
	if err != nil {
		return nil, fmt.Errorf("subscribers: register device: %w", err)
	}
	return &d, nil
}

// MarkTestDevice marks one of a subscriber's devices as a test device, or
// no longer one. A device moved to another subscriber loses the mark: the
// admin chose the device of a person, not a token.
func MarkTestDevice(ctx context.Context, db database.DB, subscriberID, deviceID int64, test bool) (*Device, error) {
	d, err := scanDevice(db.QueryRow(ctx, `UPDATE devices SET test_device = $3
		WHERE id = $2 AND subscriber_id = $1 RETURNING `+deviceColumns, subscriberID, deviceID, test))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("subscribers: mark test device %d: %w", deviceID, err)
	}
	return &d, nil
}

// GetDevice returns a device by id.
func GetDevice(ctx context.Context, db database.DB, id int64) (*Device, error) {
	d, err := scanDevice(db.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("subscribers: get device %d: %w", id, err)
	}
	return &d, nil
}

// Devices returns a subscriber's devices.
func Devices(ctx context.Context, db database.DB, subscriberID int64) ([]Device, error) {
	rows, err := db.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE subscriber_id = $1 ORDER BY id`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("subscribers: devices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("subscribers: devices: %w", err)
	}
	return out, nil
}

// Gone names a device whose provider said it no longer exists, with the
// version (UpdatedAt) of the device row the send used.
type Gone struct {
	DeviceID  int64
	UpdatedAt time.Time
	Reason    string
}

// DeactivateGone deactivates devices in one statement, each only if its row
// is still the version that was sent to: a token re-registered after the send
// stays active. It returns how many were deactivated.
func DeactivateGone(ctx context.Context, db database.DB, gone []Gone) (int64, error) {
	if len(gone) == 0 {
		return 0, nil
	}
	ids := make([]int64, len(gone))
	versions := make([]time.Time, len(gone))
	reasons := make([]string, len(gone))
	for i, g := range gone {
		ids[i], versions[i], reasons[i] = g.DeviceID, g.UpdatedAt, g.Reason
	}
	tag, err := db.Exec(ctx, `UPDATE devices d SET active = false, deactivated_at = now(), deactivated_reason = g.reason
		FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS g(id, version, reason)
		WHERE d.id = g.id AND d.updated_at = g.version AND d.active`, ids, versions, reasons)
	if err != nil {
		return 0, fmt.Errorf("subscribers: deactivate devices: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ToDelivery converts a device for the delivery package.
func (d *Device) ToDelivery() delivery.Device {
	return delivery.Device{
		ID: d.ID, Platform: d.Platform, Token: d.Token, APNsTopic: d.APNsTopic,
		APNsSandbox: d.APNsEnvironment == "sandbox", P256dh: d.P256dh, Auth: d.Auth,
	}
}

// DevicesByID returns the devices with the given ids, active or not, in id
// order.
func DevicesByID(ctx context.Context, db database.DB, ids []int64) ([]Device, error) {
	rows, err := db.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("subscribers: devices by id: %w", err)
	}
	devices, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("subscribers: unable to fetch device: %w", err)
	}
	return devices, nil
}
