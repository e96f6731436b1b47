// Package demo seeds confirmed subscribers with simulated devices, for the
// demo audience of `make run`, for process tests and for benchmarks. Every
// device it makes is one the provider simulator answers for, also after the
// simulator restarts.
package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

// Simulator makes Web Push subscriptions that survive its restarts:
// *simulator.Server, or a Remote for a simulator in another process.
type Simulator interface {
	DerivedWebPushSubscription(seed string) (simulator.WebPushSubscription, bool)
}

// Remote derives subscriptions for a simulator running elsewhere with Secret.
type Remote struct {
	URL    string
	Secret []byte
}

// DerivedWebPushSubscription implements Simulator.
func (r Remote) DerivedWebPushSubscription(seed string) (simulator.WebPushSubscription, bool) {
	return simulator.DerivedSubscription(r.Secret, r.URL, seed), true
}

// Seed makes perPlatform confirmed subscribers of a list for each platform
// given, each with one device the simulator answers for, in a few set-based
// statements. External ids and tokens start with prefix, which must be new.
func Seed(ctx context.Context, tx pgx.Tx, appID, listID int64, perPlatform int, prefix string, sim Simulator, platforms ...delivery.Platform) error {
	total := len(platforms) * perPlatform
	rows, err := tx.Query(ctx, `INSERT INTO subscribers (external_id, locale, timezone, attributes)
		SELECT $2 || '-' || i, (ARRAY['en-US', 'de-DE', 'fr-FR'])[1 + i % 3],
			(ARRAY['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', ''])[1 + i % 4],
			jsonb_build_object('plan', CASE WHEN i % 5 = 0 THEN 'pro' ELSE 'free' END, 'orders', i % 7)
		FROM generate_series(1, $1::int) i ORDER BY i RETURNING id`, total, prefix)
	if err != nil {
		return fmt.Errorf("demo: seed subscribers: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("demo: seed subscribers: %w", err)
	}
	kinds, tokens, p256dh, auth := make([]string, total), make([]string, total), make([]string, total), make([]string, total)
	for i := range total {
		switch platforms[i%len(platforms)] {
		case delivery.PlatformAPNs:
			kinds[i], tokens[i] = "apns", fmt.Sprintf("%064x", fmt.Sprintf("%s-%d", prefix, i))
		case delivery.PlatformFCM:
			kinds[i], tokens[i] = "fcm", fmt.Sprintf("sim:%s-device-%07d", prefix, i)
		default:
			sub, ok := sim.DerivedWebPushSubscription(fmt.Sprintf("%s-%07d", prefix, i))
			if !ok {
				return errors.New("demo: the simulator has no secret for durable web push subscriptions")
			}
			kinds[i], tokens[i], p256dh[i], auth[i] = "webpush", sub.Endpoint, sub.P256dh, sub.Auth
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO devices (subscriber_id, app_id, platform, token, apns_topic, apns_environment, webpush_p256dh, webpush_auth)
		SELECT s, $2, p, t, CASE WHEN p = 'apns' THEN 'com.example.herald' END, CASE WHEN p = 'apns' THEN 'production' END,
			nullif(k, ''), nullif(a, '')
		FROM unnest($1::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS d(s, p, t, k, a)`,
		ids, appID, kinds, tokens, p256dh, auth); err != nil {
		return fmt.Errorf("demo: seed devices: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO memberships (list_id, subscriber_id, status, confirmed_at)
		SELECT $1, unnest($2::bigint[]), 'confirmed', now()`, listID, ids); err != nil {
		return fmt.Errorf("demo: seed memberships: %w", err)
	}
	if _, err = tx.Exec(ctx, `INSERT INTO consent_records (subscriber_id, list_id, list_slug, action, source, detail, consent_version)
		SELECT unnest($2::bigint[]), $1, (SELECT slug FROM lists WHERE id = $1), 'confirm', 'admin', 'simulated devices seeded for ' || $3, 1`,
		listID, ids, prefix); err != nil {
		return fmt.Errorf("demo: seed consent records: %w", err)
	}
	// Fresh statistics, so the first campaign is planned for the new sizes.
	if _, err := tx.Exec(ctx, `ANALYZE devices, subscribers, memberships`); err != nil {
		return fmt.Errorf("demo: analyze: %w", err)
	}
	return nil
}
