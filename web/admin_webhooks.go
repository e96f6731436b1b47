package web

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/webhooks"
)

// Outbound webhooks, managed by admins.

func (s *Server) listWebhooks(c *fiber.Ctx) error {
	eps, err := s.Webhooks.List(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": eps, "event_types": webhooks.EventTypes})
}

func (s *Server) createWebhook(c *fiber.Ctx) error {
	var req webhooks.NewEndpoint
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	ep, secret, err := s.Webhooks.Create(c.UserContext(), actorOf(c), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"endpoint": ep, "secret": secret})
}

func (s *Server) getWebhook(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a webhook endpoint")
	if err != nil {
		return err
	}
	ep, err := s.Webhooks.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(ep)
}

func (s *Server) updateWebhook(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a webhook endpoint")
	if err != nil {
		return err
	}
	var req webhooks.EndpointUpdate
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	ep, err := s.Webhooks.Update(c.UserContext(), actorOf(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(ep)
}

func (s *Server) deleteWebhook(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a webhook endpoint")
	if err != nil {
		return err
	}
	if err := s.Webhooks.Delete(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) rotateWebhookSecret(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a webhook endpoint")
	if err != nil {
		return err
	}
	var req struct {
		OverlapSeconds *int `json:"overlap_seconds"`
	}
	// The body is optional: an empty one takes the default overlap.
	if len(c.Body()) > 0 {
		if err := s.decodeJSON(c, &req); err != nil {
			return err
		}
	}
	overlap := 24 * time.Hour
	if req.OverlapSeconds != nil {
		overlap = time.Duration(*req.OverlapSeconds) * time.Second
	}
	secret, err := s.Webhooks.RotateSecret(c.UserContext(), actorOf(c), id, overlap)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"secret": secret, "previous_secret_valid_for_seconds": int(overlap.Seconds())})
}

func (s *Server) webhookDeliveries(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a webhook endpoint")
	if err != nil {
		return err
	}
	before, limit, err := beforePage(c, 200)
	if err != nil {
		return err
	}
	items, err := s.Webhooks.Deliveries(c.UserContext(), id, before, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items})
}

func (s *Server) redeliverWebhook(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a webhook endpoint")
	if err != nil {
		return err
	}
	delivery, err := pathID(c, "delivery", "a delivery")
	if err != nil {
		return err
	}
	d, err := s.Webhooks.Redeliver(c.UserContext(), actorOf(c), id, delivery)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(d)
}
