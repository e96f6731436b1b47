package web

import (
	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
)

func (s *Server) createApp(c *fiber.Ctx) error {
	var req struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 200 {
		return invalid.Field("name", "must be 1-200 characters")
	}
	app, err := s.Apps.CreateApp(c.UserContext(), s.Pool, actorOf(c), req.Slug, req.Name, s.Config.VAPIDSubject)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(app)
}

// setCredentials stores one platform's credentials, sealed. The body is the
// credential itself; nothing secret is ever returned or logged, and provider
// endpoints cannot be set here (only the simulator sets them).
func (s *Server) setCredentials(c *fiber.Ctx) error {
	ctx := c.UserContext()
	app, err := apps.Get(ctx, s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	// The request types have no endpoint fields: provider hosts are Apple's
	// and Google's, and an API caller must not point Herald elsewhere.
	var apnsReq struct {
		KeyP8  string `json:"key_p8"`
		KeyID  string `json:"key_id"`
		TeamID string `json:"team_id"`
		Topic  string `json:"topic"`
	}
	var fcmReq struct {
		ProjectID          string `json:"project_id"`
		ServiceAccountJSON string `json:"service_account_json"`
	}
	var apns delivery.APNsCredentials
	var fcm delivery.FCMCredentials
	var vapid delivery.VAPIDKeys
	platform := c.Params("platform")
	switch platform {
	case "apns":
		err = s.decodeJSON(c, &apnsReq)
		if err == nil {
			apns = delivery.APNsCredentials{KeyP8: apnsReq.KeyP8, KeyID: apnsReq.KeyID, TeamID: apnsReq.TeamID, Topic: apnsReq.Topic}
			err = apns.Validate()
		}
	case "fcm":
		err = s.decodeJSON(c, &fcmReq)
		if err == nil {
			fcm = delivery.FCMCredentials{ProjectID: fcmReq.ProjectID, ServiceAccountJSON: fcmReq.ServiceAccountJSON}
			err = fcm.Validate()
		}
	case "vapid":
		err = s.decodeJSON(c, &vapid)
		if err == nil {
			err = vapid.Validate()
		}
	default:
		return invalid.Field("platform", "must be apns, fcm or vapid")
	}
	if err != nil {
		return err
	}
	change := audit.Change{Action: "app.credentials.set", ObjectType: "app", ObjectID: app.Slug, Summary: map[string]any{"platform": platform}}
	err = s.Apps.UpdateSecrets(ctx, s.Pool, actorOf(c), change, app.ID, func(sec *apps.Secrets) error {
		switch platform {
		case "apns":
			sec.Credentials.APNs = &apns
		case "fcm":
			sec.Credentials.FCM = &fcm
		case "vapid":
			sec.Credentials.VAPID = &vapid
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.Logger.Info("provider credentials replaced", "app", app.Slug, "platform", platform)
	return s.getApp(c)
}

func (s *Server) deleteCredentials(c *fiber.Ctx) error {
	ctx := c.UserContext()
	app, err := apps.Get(ctx, s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	platform := c.Params("platform")
	if platform != "apns" && platform != "fcm" {
		return invalid.Field("platform", "must be apns or fcm (an app always has a VAPID key pair)")
	}
	change := audit.Change{Action: "app.credentials.delete", ObjectType: "app", ObjectID: app.Slug, Summary: map[string]any{"platform": platform}}
	err = s.Apps.UpdateSecrets(ctx, s.Pool, actorOf(c), change, app.ID, func(sec *apps.Secrets) error {
		if platform == "apns" {
			sec.Credentials.APNs = nil
		} else {
			sec.Credentials.FCM = nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
