package web

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/invalid"
)

func campaignID(c *fiber.Ctx) (int64, error) {
	id, err := parseID(c.Params("id"))
	if err != nil || id == 0 {
		return 0, invalid.Field("id", "must be a campaign id")
	}
	return id, nil
}

func (s *Server) createCampaign(c *fiber.Ctx) error {
	var p campaigns.Params
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	camp, err := s.Campaigns.Create(c.UserContext(), actorOf(c), p)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(camp)
}

func (s *Server) listCampaigns(c *fiber.Ctx) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	status := campaigns.Status(c.Query("status"))
	switch status {
	case "", campaigns.StatusDraft, campaigns.StatusScheduled, campaigns.StatusRunning, campaigns.StatusPaused,
		campaigns.StatusFinished, campaigns.StatusCancelled, campaigns.StatusFailed:
	default:
		return invalid.Field("status", "is not a campaign status")
	}
	list, err := s.Campaigns.List(c.UserContext(), status, p)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(list, p.Limit, func(x campaigns.Campaign) int64 { return x.ID }))
}

func (s *Server) getCampaign(c *fiber.Ctx) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	camp, err := s.Campaigns.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(camp)
}

func (s *Server) updateCampaign(c *fiber.Ctx) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	var p campaigns.Params
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	camp, err := s.Campaigns.Update(c.UserContext(), actorOf(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(camp)
}

// campaignAction runs a lifecycle call: schedule, pause, resume, cancel.
func (s *Server) campaignAction(c *fiber.Ctx) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	var camp *campaigns.Campaign
	switch c.Params("action") {
	case "schedule":
		camp, err = s.Campaigns.ScheduleCampaign(ctx, actorOf(c), id)
	case "pause":
		camp, err = s.Campaigns.Pause(ctx, actorOf(c), id)
	case "resume":
		camp, err = s.Campaigns.Resume(ctx, actorOf(c), id)
	case "cancel":
		camp, err = s.Campaigns.Cancel(ctx, actorOf(c), id)
	case "retry-failed":
		var opts campaigns.RetryOptions
		if len(c.Body()) > 0 {
			if err := s.decodeJSON(c, &opts); err != nil {
				return err
			}
		}
		n, err := s.Campaigns.RetryFailed(ctx, actorOf(c), id, opts)
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"queued": n})
	case "test-send":
		var req struct {
			SubscriberIDs []int64 `json:"subscriber_ids"`
		}
		if err := s.decodeJSON(c, &req); err != nil {
			return err
		}
		res, err := s.Campaigns.TestSend(ctx, actorOf(c), id, req.SubscriberIDs)
		if errors.Is(err, campaigns.ErrTestSendLimit) {
			c.Set(fiber.HeaderRetryAfter, "60")
			return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf("a campaign takes %d test sends a minute", campaigns.TestSendsPerMinute))
		}
		if err != nil {
			return err
		}
		return c.JSON(res)
	default:
		return fiber.ErrNotFound
	}
	if err != nil {
		return err
	}
	return c.JSON(camp)
}

func (s *Server) previewCampaign(c *fiber.Ctx) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	p, err := s.Campaigns.Preview(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// previewAudience counts an audience before it is saved: the composer's
// live count by platform.
func (s *Server) previewAudience(c *fiber.Ctx) error {
	var req struct {
		App      string             `json:"app"`
		Audience campaigns.Audience `json:"audience"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.App == "" {
		return invalid.Field("app", "is required")
	}
	app, err := apps.Get(c.UserContext(), s.Pool, req.App)
	if errors.Is(err, apps.ErrNotFound) {
		return invalid.Field("app", "no such app")
	}
	if err != nil {
		return err
	}
	p, err := s.Campaigns.PreviewAudience(c.UserContext(), app.ID, &req.Audience)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) campaignTimeline(c *fiber.Ctx) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	tl, err := s.Campaigns.Timeline(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(tl)
}

func (s *Server) campaignStats(c *fiber.Ctx) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	st, err := s.Campaigns.Stats(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

// campaignDeliveries pages through a campaign's deliveries by status and
// reason.
func (s *Server) campaignDeliveries(c *fiber.Ctx) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	list, err := s.Campaigns.Deliveries(c.UserContext(), id, campaigns.DeliveryFilter{
		Status: c.Query("status"), Reason: c.Query("reason"), Page: p})
	if err != nil {
		return err
	}
	return c.JSON(pageOf(list, p.Limit, func(d campaigns.Delivery) int64 { return d.DeviceID }))
}

// click counts a notification tap and redirects to the campaign's URL.
func (s *Server) click(c *fiber.Ctx) error {
	target, err := s.Campaigns.Click(c.UserContext(), c.Params("token"))
	if errors.Is(err, campaigns.ErrBadToken) || errors.Is(err, campaigns.ErrNotFound) {
		l := messages[s.langOf(c)]
		return s.render(c, fiber.StatusNotFound, "message.html", pageData{L: l, Title: l["SubNotFound"], Heading: l["SubInvalidHeading"]})
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(target, fiber.StatusFound)
}

func (s *Server) campaignActionTap(c *fiber.Ctx) error {
	var req struct {
		Token  string `json:"token"`
		Action string `json:"action"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	err := s.Campaigns.RecordAction(c.UserContext(), audit.Public(clientIP(c)), req.Token, req.Action)
	if errors.Is(err, campaigns.ErrBadToken) || errors.Is(err, campaigns.ErrNotFound) {
		return invalid.Field("token", "is not a campaign action token with that action")
	}
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
