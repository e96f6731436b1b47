package optin

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// proof is how a subscribe request showed who is asking.
type proof int

const (
	// proofNone: an anonymous request. For Web Push, holding the very
	// subscription (endpoint and both keys, the auth secret among them)
	// re-identifies its anonymous owner; nothing else does.
	proofNone proof = iota
	// proofToken: the subscriber token Herald gave an anonymous browser.
	proofToken
	// proofIdentity: external_id with its identity_hmac, the app's backend
	// vouching that this user is signed in to the app on the device.
	proofIdentity
)

// ErrKeysTaken is returned when a request names a Web Push endpoint that is
// registered with other keys and does not come from the subscription's owner.
var ErrKeysTaken = fmt.Errorf("%w: this push subscription is registered with other keys; subscribe again from the browser",
	subscribers.ErrConflict)

// deviceLock is the first key of the advisory locks that order registrations
// of one token.
const deviceLock = 0x48524456 // "HRDV"

// placement is what a subscribe request did with its device.
type placement int

const (
	// placed: the device is the requester's (new, refreshed or moved).
	placed placement = iota
	// notPlaced: the device stays with another subscriber; the requester
	// gets a membership at most, and no confirmation goes to the device.
	notPlaced
)

// placeDevice applies the device ownership rule (docs/api.md, "Who owns a
// device"). A known push token is not proof of ownership: tokens travel
// through app backends and logs, and a Web Push endpoint is a URL. So:
//
//   - a new token is registered to the requester;
//   - the requester's own device is refreshed (for Web Push the keys change
//     only on a request from its owner: the same verified identity or the
//     owner's subscriber token);
//   - a device registered to someone else moves only on a verified identity
//     (the app vouches who is signed in on it), and never changes Web Push
//     keys: another browser's endpoint with other keys is refused;
//   - otherwise (anonymous, or a subscriber token of another person) the
//     device stays where it is, with its owner's memberships and token; the
//     request gets a membership for its own subscriber at most.
func (s *Service) placeDevice(ctx context.Context, tx pgx.Tx, subscriberID int64, how proof, appID int64,
	p subscribers.DeviceParams) (*subscribers.Device, placement, error) {
	// Two first registrations of one token at once would both find nothing
	// to lock and the second would take the device: they go one by one.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2::bigint::text || '/' || $3 || '/' || $4))`,
		deviceLock, appID, string(p.Platform), p.Token); err != nil {
		return nil, notPlaced, fmt.Errorf("optin: lock device token: %w", err)
	}
	existing, err := subscribers.DeviceByToken(ctx, tx, appID, p)
	if errors.Is(err, subscribers.ErrNotFound) {
		dev, err := subscribers.RegisterDevice(ctx, tx, subscriberID, appID, p)
		return dev, placed, err
	}
	if err != nil {
		return nil, notPlaced, err
	}
	owner := existing.SubscriberID == subscriberID
	switch {
	case p.Platform == delivery.PlatformWebPush && !existing.SameKeys(p) && !(owner && how != proofNone):
		return nil, notPlaced, ErrKeysTaken
	case owner, how == proofIdentity:
		dev, err := subscribers.RegisterDevice(ctx, tx, subscriberID, appID, p)
		if err == nil && !owner {
			s.logger.Info("device moved to a verified subscriber", "device_id", dev.ID, "from_subscriber_id",
				existing.SubscriberID, "to_subscriber_id", subscriberID)
		}
		return dev, placed, err
	default:
		s.logger.Info("subscribe request named another subscriber's device; the device stays", "device_id", existing.ID,
			"owner_subscriber_id", existing.SubscriberID, "requester_subscriber_id", subscriberID)
		return existing, notPlaced, nil
	}
}
