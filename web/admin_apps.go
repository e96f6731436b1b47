package web

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/invalid"
)

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
