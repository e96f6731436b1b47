package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// publicApp gives pages and SDKs what they need to subscribe: the VAPID
// public key (applicationServerKey).
func (s *Server) publicApp(c *fiber.Ctx) error {
	app, err := apps.Get(c.UserContext(), s.Pool, c.Params("app"))
	if err != nil {
		return err
	}
	logo := ""
	if app.LogoType != "" {
		logo = s.Config.PublicURL + logoPath(app)
	}
	// Who sends: what a widget on another site shows in its header.
	return c.JSON(fiber.Map{"app": app.Slug, "vapid_public_key": app.VAPIDPublicKey, "company_name": app.CompanyName,
		"accent_color": app.AccentColor, "privacy_url": app.PrivacyURL, "imprint_url": app.ImprintURL, "logo_url": logo})
}

// Rate limits of the public API.
//
// Every request to the public API and the pages spends one from its
// address's budget (HERALD_RATE_LIMIT_IP, limitByIP). A request that names
// a subscriber is also limited per subscriber (HERALD_RATE_LIMIT_SUBSCRIBER),
// but that budget is spent only by requests whose proof holds (an
// identity_hmac that matches its external_id, a subscriber_token that is
// known): otherwise anyone could use up a person's budget by naming them
// with a wrong proof, from as many addresses as they like, and lock them
// out. A failed proof counts instead against the caller's address, which
// may fail that many proofs a minute before its requests that carry one are
// refused. An unsubscribe whose proof holds is never limited, by subscriber
// or by address. A subscribe that names only a device (an anonymous
// browser or app) has no proof to wait for: it spends the device's budget
// at once, which keeps a device from being sent confirmations in a loop.

// subscriberKey is what the per-subscriber limit counts by: the person if
// known, else the device. proof reports whether the key is a claimed
// identity, to be spent only once the claim holds.
func subscriberKey(id optin.Identity, d optin.DeviceRequest) (key string, proof bool) {
	var k string
	switch {
	case id.ExternalID != "":
		k, proof = "x:"+id.App+":"+id.ExternalID, true
	case id.SubscriberToken != "":
		k, proof = "t:"+id.SubscriberToken, true
	case d.Subscription != nil:
		k = "d:" + d.Subscription.Endpoint
	default:
		k = "d:" + d.Token
	}
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:12]), proof
}

// failedProof reports whether err says an identity proof did not hold.
func failedProof(err error) bool {
	return errors.Is(err, optin.ErrIdentity) || errors.Is(err, optin.ErrTokenInvalid) || errors.Is(err, optin.ErrTokenExpired)
}

// proofsRefused is a 429 when the caller's address has failed too many
// proofs this minute; nil otherwise.
func (s *Server) proofsRefused(c *fiber.Ctx) error {
	if spent, wait := s.proofLimit.spent(ipKey(c)); spent {
		return tooMany(wait, "too many failed identity proofs from this address")
	}
	return nil
}

// countProof counts a failed proof against the caller's address, never
// against the subscriber it named, and reports a 429 once the address has
// failed too many.
func (s *Server) countProof(c *fiber.Ctx, err error) error {
	if !failedProof(err) {
		return nil
	}
	if ok, wait := s.proofLimit.allow(ipKey(c)); !ok {
		return tooMany(wait, "too many failed identity proofs from this address")
	}
	return nil
}

func (s *Server) subscribe(c *fiber.Ctx) error {
	var req optin.SubscribeRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.List == "" {
		return invalid.Field("list", "is required")
	}
	key, proof := subscriberKey(req.Identity, req.Device)
	if proof {
		if err := s.proofsRefused(c); err != nil {
			return err
		}
		if spent, wait := s.subLimit.spent(key); spent {
			return tooMany(wait, "too many requests for this subscriber")
		}
	} else if ok, wait := s.subLimit.allow(key); !ok {
		return tooMany(wait, "too many requests for this device")
	}
	res, err := s.OptIn.Subscribe(c.UserContext(), audit.Public(clientIP(c)), req, optin.Client{IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)})
	if err != nil {
		if refused := s.countProof(c, err); refused != nil {
			return refused
		}
		return err
	}
	if proof {
		s.subLimit.allow(key) // the proof held: now it is this subscriber's request
	}
	status := fiber.StatusAccepted // a confirmation is on its way
	if res.Status == subscribers.StatusConfirmed {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(res)
}

// identify resolves the subscriber an identity proves. A proof that does
// not hold counts against the caller's address (countProof).
func (s *Server) identify(c *fiber.Ctx, id optin.Identity) (int64, error) {
	subID, err := s.OptIn.Identify(c.UserContext(), id)
	if errors.Is(err, subscribers.ErrNotFound) {
		err = optin.ErrTokenInvalid
	}
	if err != nil {
		if refused := s.countProof(c, err); refused != nil {
			return 0, refused
		}
		return 0, err
	}
	return subID, nil
}

// publicPreferences lists the caller's memberships with a link to the
// preference page.
func (s *Server) publicPreferences(c *fiber.Ctx) error {
	var id optin.Identity
	if err := s.decodeJSON(c, &id); err != nil {
		return err
	}
	if err := s.proofsRefused(c); err != nil {
		return err
	}
	subID, err := s.identify(c, id)
	if err != nil {
		return err
	}
	key, _ := subscriberKey(id, optin.DeviceRequest{})
	if ok, wait := s.subLimit.allow(key); !ok {
		return tooMany(wait, "too many requests for this subscriber")
	}
	m, err := s.OptIn.Memberships(c.UserContext(), subID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"memberships": m, "preferences_url": s.OptIn.PreferencesURL(subID)})
}

// publicUnsubscribe leaves one list or all. Once the caller's proof holds it
// is never rate limited: not per subscriber, and not per address either
// (limitByIPDeferred), so that no one sharing a person's address, or naming
// them with wrong proofs, can keep them from leaving.
func (s *Server) publicUnsubscribe(c *fiber.Ctx) error {
	var req struct {
		optin.Identity
		List string `json:"list"`
	}
	wait, overBudget := overIPBudget(c)
	if err := s.decodeJSON(c, &req); err != nil {
		if overBudget {
			return tooMany(wait, "too many requests from this address")
		}
		return err
	}
	subID, err := s.identify(c, req.Identity)
	if err != nil {
		if overBudget {
			return tooMany(wait, "too many requests from this address")
		}
		return err
	}
	var listID int64
	if req.List != "" {
		l, err := subscribers.GetList(c.UserContext(), s.Pool, req.List)
		if errors.Is(err, subscribers.ErrNotFound) {
			return invalid.Field("list", "no such list")
		}
		if err != nil {
			return err
		}
		listID = l.ID
	}
	ev := subscribers.Evidence{Source: subscribers.SourceWeb, IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)}
	if err := s.OptIn.Unsubscribe(c.UserContext(), audit.Public(clientIP(c)), subID, listID, ev); err != nil {
		return err
	}
	m, err := s.OptIn.Memberships(c.UserContext(), subID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"memberships": m})
}
