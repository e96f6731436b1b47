package web

import (
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// listApps lists every app as admins see it (without identity secrets:
// those are on each app's own page).
func (s *Server) listApps(c *fiber.Ctx) error {
	list, err := apps.List(c.UserContext(), s.Pool)
	if err != nil {
		return err
	}
	items := make([]fiber.Map, len(list))
	for i := range list {
		items[i] = appSummary(&list[i])
	}
	return c.JSON(fiber.Map{"items": items})
}

// testPush sends the app's test notification to one of its devices and
// answers with the provider's outcome.
func (s *Server) testPush(c *fiber.Ctx) error {
	var req struct {
		DeviceID int64 `json:"device_id"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.DeviceID <= 0 {
		return invalid.Field("device_id", "is required: the id of one of the app's devices")
	}
	if s.Senders == nil {
		return problem(c, fiber.StatusServiceUnavailable, "Unavailable", "this process sends no pushes")
	}
	ctx := c.UserContext()
	app, err := apps.Get(ctx, s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	d, err := subscribers.GetDevice(ctx, s.Pool, req.DeviceID)
	if errors.Is(err, subscribers.ErrNotFound) || (err == nil && d.AppID != app.ID) {
		return invalid.Field("device_id", "is not a device of this app")
	}
	if err != nil {
		return err
	}
	if !d.Active {
		return invalid.Field("device_id", "the device is no longer active: its provider said it is gone")
	}
	// Test pushes go to staff devices only: a subscriber's phone gets
	// nothing they did not ask for.
	if !d.TestDevice {
		return invalid.Field("device_id", "is not a test device: mark it as one first (PUT /api/v1/subscribers/{id}/devices/{device_id})")
	}
	o, err := s.Senders.TestPush(ctx, actorOf(c), app, d.ToDelivery())
	if errors.Is(err, apps.ErrTestPushLimit) {
		c.Set(fiber.HeaderRetryAfter, "60")
		return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf("an app takes %d test pushes a minute", apps.TestPushesPerMinute))
	}
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"device_id": d.ID, "platform": d.Platform,
		"outcome": campaigns.TestSendOutcome{Class: o.Class, Reason: o.Reason, ProviderID: o.ProviderID, StatusCode: o.StatusCode}})
}

// getApp shows an app to admins, including the identity secret its backend
// needs to compute identity_hmac; provider credentials are never returned.
func (s *Server) getApp(c *fiber.Ctx) error {
	ctx := c.UserContext()
	app, err := apps.Get(ctx, s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	sec, err := s.Apps.Secrets(ctx, s.Pool, app.ID)
	if err != nil {
		return err
	}
	return c.JSON(appView(app, sec))
}

// appSummary is an app in the admins' list.
func appSummary(app *apps.App) fiber.Map {
	logo := ""
	if app.LogoType != "" {
		logo = logoPath(app)
	}
	return fiber.Map{"id": app.ID, "slug": app.Slug, "name": app.Name, "company_name": app.CompanyName,
		"accent_color": app.AccentColor, "logo_url": logo, "created_at": app.CreatedAt, "updated_at": app.UpdatedAt}
}

// appView is an app as admins see it.
func appView(app *apps.App, sec *apps.Secrets) fiber.Map {
	logo := ""
	if app.LogoType != "" {
		logo = logoPath(app)
	}
	return fiber.Map{
		"id": app.ID, "slug": app.Slug, "name": app.Name, "vapid_public_key": app.VAPIDPublicKey,
		"identity_secret": sec.IdentitySecret,
		"apns_configured": sec.Credentials.APNs != nil, "fcm_configured": sec.Credentials.FCM != nil,
		"company_name": app.CompanyName, "privacy_url": app.PrivacyURL, "imprint_url": app.ImprintURL,
		"accent_color": app.AccentColor, "logo_url": logo,
		"created_at": app.CreatedAt, "updated_at": app.UpdatedAt,
	}
}

// updateApp changes an app's name and branding.
func (s *Server) updateApp(c *fiber.Ctx) error {
	var b apps.Branding
	if err := s.decodeJSON(c, &b); err != nil {
		return err
	}
	app, err := s.Apps.UpdateBranding(c.UserContext(), s.Pool, actorOf(c), c.Params("slug"), b)
	if err != nil {
		return err
	}
	return s.appAnswer(c, app)
}

// setAppLogo stores the body (the image's bytes) as the app's logo;
// deleteAppLogo removes it.
func (s *Server) setAppLogo(c *fiber.Ctx) error {
	app, err := s.Apps.SetLogo(c.UserContext(), s.Pool, actorOf(c), c.Params("slug"), append([]byte{}, c.Body()...))
	if err != nil {
		return err
	}
	return s.appAnswer(c, app)
}

func (s *Server) deleteAppLogo(c *fiber.Ctx) error {
	app, err := s.Apps.SetLogo(c.UserContext(), s.Pool, actorOf(c), c.Params("slug"), nil)
	if err != nil {
		return err
	}
	return s.appAnswer(c, app)
}

func (s *Server) appAnswer(c *fiber.Ctx, app *apps.App) error {
	sec, err := s.Apps.Secrets(c.UserContext(), s.Pool, app.ID)
	if err != nil {
		return err
	}
	return c.JSON(appView(app, sec))
}

// createAPIKey issues another key; its secret is in this response only.
func (s *Server) createAPIKey(c *fiber.Ctx) error {
	var req struct {
		Name         string       `json:"name"`
		Role         apikeys.Role `json:"role"`
		ExpiresInDay int          `json:"expires_in_days"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ExpiresInDay < 0 || req.ExpiresInDay > 3650 {
		return invalid.Field("expires_in_days", "must be from 0 (never) to 3650")
	}
	plain, key, err := s.keys.Create(c.UserContext(), actorOf(c), req.Name, req.Role, time.Duration(req.ExpiresInDay)*24*time.Hour)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"key": plain, "api_key": key})
}

// listAPIKeys lists every key without its secret.
func (s *Server) listAPIKeys(c *fiber.Ctx) error {
	keys, err := apikeys.List(c.UserContext(), s.Pool)
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []apikeys.Key{}
	}
	return c.JSON(fiber.Map{"items": keys})
}

// revokeAPIKey disables a key at once.
func (s *Server) revokeAPIKey(c *fiber.Ctx) error {
	id, err := parseID(c.Params("id"))
	if err != nil || id == 0 {
		return invalid.Field("id", "must be an API key id")
	}
	if err := s.keys.Revoke(c.UserContext(), actorOf(c), id); errors.Is(err, apikeys.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "no API key has this id")
	} else if err != nil {
		return err
	}
	s.Logger.Warn("API key revoked", "api_key_id", id, "actor", actorOf(c).String())
	return c.SendStatus(fiber.StatusNoContent)
}
