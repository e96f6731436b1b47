package web

import (
	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// page is a keyset-paginated response.
type page[T any] struct {
	Items []T `json:"items"`
	// NextAfter is passed as ?after= for the next page; null at the end.
	NextAfter *int64 `json:"next_after"`
}

func pageOf[T any](items []T, limit int, id func(T) int64) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) > 0 && len(items) == limit {
		last := id(items[len(items)-1])
		p.NextAfter = &last
	}
	return p
}

func pageParams(c *fiber.Ctx) (subscribers.Page, error) {
	p := subscribers.Page{Limit: 100}
	if v := c.Query("limit"); v != "" {
		n, err := parseID(v)
		if err != nil || n < 1 || n > 1000 {
			return p, invalid.Field("limit", "must be a number from 1 to 1000")
		}
		p.Limit = int(n)
	}
	if v := c.Query("after"); v != "" {
		n, err := parseID(v)
		if err != nil {
			return p, invalid.Field("after", "must be the next_after of the previous page")
		}
		p.After = n
	}
	return p, nil
}

func (s *Server) listLists(c *fiber.Ctx) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	vis := c.Query("visibility")
	if vis != "" && vis != "public" && vis != "private" {
		return invalid.Field("visibility", "must be public or private")
	}
	lists, err := subscribers.Lists(c.UserContext(), s.Pool, vis, p)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(lists, p.Limit, func(l subscribers.List) int64 { return l.ID }))
}

func (s *Server) createList(c *fiber.Ctx) error {
	var p subscribers.ListParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	l, err := s.Subscribers.CreateList(c.UserContext(), actorOf(c), p)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(l)
}

func (s *Server) getList(c *fiber.Ctx) error {
	l, err := subscribers.GetList(c.UserContext(), s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	return c.JSON(l)
}

// setListLogo stores the body (the image's bytes) as the list's own logo;
// deleteListLogo removes it, and the list's pages show the app's again.
func (s *Server) setListLogo(c *fiber.Ctx) error {
	l, err := s.Subscribers.SetListLogo(c.UserContext(), actorOf(c), c.Params("slug"), append([]byte{}, c.Body()...))
	if err != nil {
		return err
	}
	return c.JSON(l)
}

func (s *Server) deleteListLogo(c *fiber.Ctx) error {
	l, err := s.Subscribers.SetListLogo(c.UserContext(), actorOf(c), c.Params("slug"), nil)
	if err != nil {
		return err
	}
	return c.JSON(l)
}

func (s *Server) updateList(c *fiber.Ctx) error {
	var p subscribers.ListParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	l, err := s.Subscribers.UpdateList(c.UserContext(), actorOf(c), c.Params("slug"), p)
	if err != nil {
		return err
	}
	return c.JSON(l)
}

func (s *Server) deleteList(c *fiber.Ctx) error {
	if err := s.Subscribers.DeleteList(c.UserContext(), actorOf(c), c.Params("slug")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// setMembership lets an admin or marketer confirm or end a membership, for
// consent obtained elsewhere (which detail must describe) or a request by
// phone or letter.
func (s *Server) setMembership(c *fiber.Ctx) error {
	var req struct {
		Status string `json:"status"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	id, err := parseID(c.Params("id"))
	if err != nil {
		return invalid.Field("id", "must be a subscriber id")
	}
	ev := subscribers.Evidence{Source: subscribers.SourceAdmin, IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)}
	status, err := s.OptIn.SetMembership(c.UserContext(), actorOf(c), c.Params("slug"), id, subscribers.MembershipStatus(req.Status), ev)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"list": c.Params("slug"), "subscriber_id": id, "status": status})
}
