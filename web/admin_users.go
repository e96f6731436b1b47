package web

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/users"
)

// getSession says who the caller is: the signed-in user with the CSRF
// token their requests must send, or the API key.
func (s *Server) getSession(c *fiber.Ctx) error {
	if k := apiKeyOf(c); k != nil {
		return c.JSON(fiber.Map{"kind": "api_key", "api_key": k, "role": k.Role})
	}
	u := sessionOf(c)
	return c.JSON(fiber.Map{
		"kind": "session", "user": u.user, "role": u.user.Role,
		"csrf_token": s.Users.CSRFToken(u.raw), "csrf_header": csrfHeader,
		"expires_at": u.session.ExpiresAt,
	})
}

func pathID(c *fiber.Ctx, name, what string) (int64, error) {
	id, err := parseID(c.Params(name))
	if err != nil || id == 0 {
		return 0, invalid.Field(name, "must be "+what+" id")
	}
	return id, nil
}

func (s *Server) listUsers(c *fiber.Ctx) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	list, err := s.Users.List(c.UserContext(), p.After, p.Limit)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(list, p.Limit, func(u users.User) int64 { return u.ID }))
}

func (s *Server) getUser(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a user")
	if err != nil {
		return err
	}
	u, err := s.Users.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	teams, err := s.Users.TeamsOf(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user": u, "teams": teams})
}

func (s *Server) updateUser(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a user")
	if err != nil {
		return err
	}
	var req struct {
		Name   *string      `json:"name"`
		Role   *access.Role `json:"role"`
		Locale *string      `json:"locale"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.Users.Update(c.UserContext(), actorOf(c), id, users.Patch{Name: req.Name, Role: req.Role, Locale: req.Locale})
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (s *Server) disableUser(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a user")
	if err != nil {
		return err
	}
	if u := sessionOf(c); u != nil && u.user.ID == id {
		return invalid.Field("id", "you cannot disable yourself")
	}
	if err := s.Users.Disable(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return s.answerUser(c, id)
}

func (s *Server) enableUser(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a user")
	if err != nil {
		return err
	}
	if err := s.Users.Enable(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return s.answerUser(c, id)
}

func (s *Server) answerUser(c *fiber.Ctx, id int64) error {
	u, err := s.Users.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(u)
}

// resetUserAccess ends a user's sessions, clears their password and second
// factor, and answers the link on which they set a new password: the admin
// hands it over (Herald sends no email for it).
func (s *Server) resetUserAccess(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a user")
	if err != nil {
		return err
	}
	link, err := s.Users.ResetAccess(c.UserContext(), actorOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"link": link, "expires_in_seconds": int(s.Users.Config().ResetTTL / time.Second)})
}

func (s *Server) signOutUserEverywhere(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a user")
	if err != nil {
		return err
	}
	if _, err := s.Users.Get(c.UserContext(), id); err != nil {
		return err
	}
	n, err := s.Users.SignOutEverywhere(c.UserContext(), actorOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"sessions_ended": n})
}

func (s *Server) listInvitations(c *fiber.Ctx) error {
	list, err := s.Users.ListInvitations(c.UserContext())
	if err != nil {
		return err
	}
	if list == nil {
		list = []users.Link{}
	}
	return c.JSON(fiber.Map{"items": list})
}

func (s *Server) createInvitation(c *fiber.Ctx) error {
	var req struct {
		Email string      `json:"email"`
		Name  string      `json:"name"`
		Role  access.Role `json:"role"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	link, inv, err := s.Users.Invite(c.UserContext(), actorOf(c), users.Invitation{Email: req.Email, Name: req.Name, Role: req.Role})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"link": link, "invitation": inv})
}

func (s *Server) revokeInvitation(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "an invitation")
	if err != nil {
		return err
	}
	if err := s.Users.RevokeInvitation(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listTeams(c *fiber.Ctx) error {
	teams, err := s.Users.ListTeams(c.UserContext())
	if err != nil {
		return err
	}
	if teams == nil {
		teams = []users.Team{}
	}
	return c.JSON(fiber.Map{"items": teams})
}

type teamRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

func (s *Server) createTeam(c *fiber.Ctx) error {
	var req teamRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return invalid.Field("name", "is required")
	}
	desc := ""
	if req.Description != nil {
		desc = *req.Description
	}
	t, err := s.Users.CreateTeam(c.UserContext(), actorOf(c), *req.Name, desc)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (s *Server) getTeam(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a team")
	if err != nil {
		return err
	}
	t, err := s.Users.GetTeam(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *Server) updateTeam(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a team")
	if err != nil {
		return err
	}
	var req teamRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.Users.UpdateTeam(c.UserContext(), actorOf(c), id, req.Name, req.Description)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *Server) deleteTeam(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a team")
	if err != nil {
		return err
	}
	if err := s.Users.DeleteTeam(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) addTeamMember(c *fiber.Ctx) error {
	return s.changeTeamMember(c, s.Users.AddTeamMember)
}

func (s *Server) removeTeamMember(c *fiber.Ctx) error {
	return s.changeTeamMember(c, s.Users.RemoveTeamMember)
}

// changeTeamMember adds a user to a team or takes them out (change).
func (s *Server) changeTeamMember(c *fiber.Ctx, change func(context.Context, audit.Actor, int64, int64) error) error {
	team, err := pathID(c, "id", "a team")
	if err != nil {
		return err
	}
	user, err := pathID(c, "user", "a user")
	if err != nil {
		return err
	}
	if err := change(c.UserContext(), actorOf(c), team, user); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// listAudit pages through the audit log, newest first: ?before= is the
// next_before of the previous page.
func (s *Server) listAudit(c *fiber.Ctx) error {
	var f audit.Filter
	var err error
	intQuery := func(name string, dst *int64) {
		if v := c.Query(name); v != "" && err == nil {
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || n < 1 {
				err = invalid.Field(name, "must be a positive number")
			}
			*dst = n
		}
	}
	timeQuery := func(name string, dst *time.Time) {
		if v := c.Query(name); v != "" && err == nil {
			t, perr := time.Parse(time.RFC3339, v)
			if perr != nil {
				err = invalid.Field(name, "must be an RFC 3339 time such as 2026-11-23T10:00:00Z")
			}
			*dst = t
		}
	}
	intQuery("actor_id", &f.ActorID)
	intQuery("before", &f.Before)
	var limit int64
	intQuery("limit", &limit)
	timeQuery("since", &f.Since)
	timeQuery("until", &f.Until)
	if err != nil {
		return err
	}
	if limit > 500 {
		return invalid.Field("limit", "must be at most 500")
	}
	f.Limit = int(limit)
	switch k := audit.Kind(c.Query("actor_type")); k {
	case "", audit.KindUser, audit.KindAPIKey, audit.KindOperator, audit.KindSubscriber, audit.KindSystem:
		f.ActorType = k
	default:
		return invalid.Field("actor_type", "must be user, api_key, operator, subscriber or system")
	}
	for name, dst := range map[string]*string{"object_type": &f.ObjectType, "object_id": &f.ObjectID, "action": &f.Action} {
		v := c.Query(name)
		if len(v) > 200 {
			return invalid.Field(name, "must be at most 200 bytes")
		}
		*dst = v
	}
	entries, err := audit.List(c.UserContext(), s.Pool, f)
	if err != nil {
		return err
	}
	pageSize := f.Limit
	if pageSize == 0 {
		pageSize = 100
	}
	var next *int64
	if n := len(entries); n > 0 && n == pageSize {
		last := entries[n-1].ID
		next = &last
	}
	return c.JSON(fiber.Map{"items": entries, "next_before": next})
}

func (s *Server) getSecuritySettings(c *fiber.Ctx) error {
	on, err := s.Users.RequireAdminTOTP(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"require_admin_totp": on})
}

func (s *Server) putSecuritySettings(c *fiber.Ctx) error {
	var req struct {
		RequireAdminTOTP *bool `json:"require_admin_totp"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.RequireAdminTOTP == nil {
		return invalid.Field("require_admin_totp", "is required (true or false)")
	}
	if err := s.Users.SetRequireAdminTOTP(c.UserContext(), actorOf(c), *req.RequireAdminTOTP); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"require_admin_totp": *req.RequireAdminTOTP})
}
