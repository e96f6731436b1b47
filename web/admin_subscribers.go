package web

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

func parseID(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not an id: %q", s)
	}
	return n, nil
}

func subscriberID(c *fiber.Ctx) (int64, error) {
	id, err := parseID(c.Params("id"))
	if err != nil || id == 0 {
		return 0, invalid.Field("id", "must be a subscriber id")
	}
	return id, nil
}

func (s *Server) listSubscribers(c *fiber.Ctx) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	f := subscribers.Filter{
		State: subscribers.State(c.Query("state")), Email: c.Query("email"), ExternalID: c.Query("external_id"),
		Status: subscribers.MembershipStatus(c.Query("status")),
	}
	switch f.State {
	case "", subscribers.StateActive, subscribers.StateBlocked, subscribers.StateErased:
	default:
		return invalid.Field("state", "must be active, blocked or erased")
	}
	switch f.Status {
	case "", subscribers.StatusPending, subscribers.StatusConfirmed, subscribers.StatusUnsubscribed:
	default:
		return invalid.Field("status", "must be pending, confirmed or unsubscribed")
	}
	if slug := c.Query("list"); slug != "" {
		l, err := subscribers.GetList(c.UserContext(), s.Pool, slug)
		if errors.Is(err, subscribers.ErrNotFound) {
			return invalid.Field("list", "no such list")
		}
		if err != nil {
			return err
		}
		f.ListID = l.ID
	} else if f.Status != "" {
		return invalid.Field("status", "needs a list")
	}
	subs, err := subscribers.Find(c.UserContext(), s.Pool, f, p)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(subs, p.Limit, func(s subscribers.Subscriber) int64 { return s.ID }))
}

func (s *Server) createSubscriber(c *fiber.Ctx) error {
	var p subscribers.SubscriberParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	sub, err := s.Subscribers.Create(c.UserContext(), actorOf(c), p)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(sub)
}

// subscriberView adds devices and memberships to a subscriber.
type subscriberView struct {
	*subscribers.Subscriber
	Devices     any                      `json:"devices"`
	Memberships []subscribers.Membership `json:"memberships"`
}

// deviceSummary is a device as support and marketing see it: which
// platform, whether it works, and enough of the address to tell two apart,
// never what would let anyone send to it (the token, the Web Push endpoint
// and its keys). Admins see the whole device.
type deviceSummary struct {
	ID         int64     `json:"id"`
	Platform   string    `json:"platform"`
	Address    string    `json:"address"`
	Active     bool      `json:"active"`
	TestDevice bool      `json:"test_device"`
	CreatedAt  time.Time `json:"created_at"`
}

func summarize(devices []subscribers.Device) []deviceSummary {
	out := make([]deviceSummary, len(devices))
	for i, d := range devices {
		address := "…" + d.Token[max(0, len(d.Token)-4):]
		if d.Platform == delivery.PlatformWebPush {
			if u, err := url.Parse(d.Token); err == nil {
				address = u.Host
			}
		}
		out[i] = deviceSummary{ID: d.ID, Platform: string(d.Platform), Address: address, Active: d.Active,
			TestDevice: d.TestDevice, CreatedAt: d.CreatedAt}
	}
	return out
}

func (s *Server) getSubscriber(c *fiber.Ctx) error {
	id, err := subscriberID(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	sub, err := subscribers.Get(ctx, s.Pool, id)
	if err != nil {
		return err
	}
	v := subscriberView{Subscriber: sub}
	devices, err := subscribers.Devices(ctx, s.Pool, id)
	if err != nil {
		return err
	}
	v.Devices = summarize(devices)
	if roleOf(c) == access.RoleAdmin {
		v.Devices = devices
	}
	if v.Memberships, err = subscribers.Memberships(ctx, s.Pool, id); err != nil {
		return err
	}
	return c.JSON(v)
}

// markTestDevice marks one of a subscriber's devices as a test device (it
// receives test sends without list consent), or no longer one.
func (s *Server) markTestDevice(c *fiber.Ctx) error {
	id, err := subscriberID(c)
	if err != nil {
		return err
	}
	deviceID, err := parseID(c.Params("device"))
	if err != nil || deviceID == 0 {
		return invalid.Field("device", "must be a device id")
	}
	var req struct {
		TestDevice *bool `json:"test_device"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.TestDevice == nil {
		return invalid.Field("test_device", "is required: true or false")
	}
	d, err := s.Subscribers.MarkTestDevice(c.UserContext(), actorOf(c), id, deviceID, *req.TestDevice)
	if err != nil {
		return err
	}
	s.Logger.Info("test device marked", "subscriber_id", id, "device_id", deviceID, "test_device", *req.TestDevice, "actor", actorOf(c).String())
	return c.JSON(d)
}

func (s *Server) updateSubscriber(c *fiber.Ctx) error {
	id, err := subscriberID(c)
	if err != nil {
		return err
	}
	var p subscribers.SubscriberParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	sub, err := s.Subscribers.Update(c.UserContext(), actorOf(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(sub)
}

// subscriberConsent pages through a subscriber's consent history, newest
// first. The evidence that names a person (address, browser) is for admins,
// as whole devices are.
func (s *Server) subscriberConsent(c *fiber.Ctx) error {
	id, err := subscriberID(c)
	if err != nil {
		return err
	}
	before, limit, err := beforePage(c, 200)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 50
	}
	ctx := c.UserContext()
	if _, err := subscribers.Get(ctx, s.Pool, id); err != nil {
		return err
	}
	items, err := subscribers.ConsentPage(ctx, s.Pool, id, before, int(limit))
	if err != nil {
		return err
	}
	if roleOf(c) != access.RoleAdmin {
		for i := range items {
			items[i].IP, items[i].UserAgent = nil, nil
		}
	}
	var next *int64
	if len(items) == int(limit) {
		next = &items[len(items)-1].ID
	}
	if items == nil {
		items = []subscribers.ConsentRecord{}
	}
	return c.JSON(fiber.Map{"items": items, "next_before": next})
}

func (s *Server) exportSubscriber(c *fiber.Ctx) error {
	id, err := subscriberID(c)
	if err != nil {
		return err
	}
	export, err := s.OptIn.Export(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="subscriber-%d.json"`, id))
	return c.JSON(export)
}

func (s *Server) eraseSubscriber(c *fiber.Ctx) error {
	id, err := subscriberID(c)
	if err != nil {
		return err
	}
	if err := s.OptIn.Erase(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
