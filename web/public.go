package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apps"
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
	return c.JSON(fiber.Map{"app": app.Slug, "vapid_public_key": app.VAPIDPublicKey})
}

// subscriberKey is what the per-subscriber limit counts by: the person if
// known, else the device.
func subscriberKey(id optin.Identity, d optin.DeviceRequest) string {
	var k string
	switch {
	case id.ExternalID != "":
		k = "x:" + id.App + ":" + id.ExternalID
	case id.SubscriberToken != "":
		k = "t:" + id.SubscriberToken
	case d.Subscription != nil:
		k = "d:" + d.Subscription.Endpoint
	default:
		k = "d:" + d.Token
	}
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:12])
}

func (s *Server) subscribe(c *fiber.Ctx) error {
	var req optin.SubscribeRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if ok, _ := s.subLimit.allow(subscriberKey(req.Identity, req.Device)); !ok {
		return problem(c, fiber.StatusTooManyRequests, "Too many requests", "too many requests for this subscriber")
	}
	if req.List == "" {
		return invalid.Field("list", "is required")
	}
	res, err := s.OptIn.Subscribe(c.UserContext(), req, optin.Client{IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)})
	if err != nil {
		return err
	}
	status := fiber.StatusAccepted // a confirmation is on its way
	if res.Status == subscribers.StatusConfirmed {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(res)
}

func (s *Server) identify(c *fiber.Ctx, id optin.Identity) (int64, error) {
	if ok, _ := s.subLimit.allow(subscriberKey(id, optin.DeviceRequest{})); !ok {
		return 0, fiber.NewError(fiber.StatusTooManyRequests, "too many requests for this subscriber")
	}
	subID, err := s.OptIn.Identify(c.UserContext(), id)
	if errors.Is(err, subscribers.ErrNotFound) {
		return 0, optin.ErrTokenInvalid
	}
	return subID, err
}

// publicPreferences lists the caller's memberships with a link to the
// preference page.
func (s *Server) publicPreferences(c *fiber.Ctx) error {
	var id optin.Identity
	if err := s.decodeJSON(c, &id); err != nil {
		return err
	}
	subID, err := s.identify(c, id)
	if err != nil {
		return err
	}
	m, err := s.OptIn.Memberships(c.UserContext(), subID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"memberships": m, "preferences_url": s.OptIn.PreferencesURL(subID)})
}

func (s *Server) publicUnsubscribe(c *fiber.Ctx) error {
	var req struct {
		optin.Identity
		List string `json:"list"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	subID, err := s.identify(c, req.Identity)
	if err != nil {
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
	if err := s.OptIn.Unsubscribe(c.UserContext(), subID, listID, ev); err != nil {
		return err
	}
	m, err := s.OptIn.Memberships(c.UserContext(), subID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"memberships": m})
}
