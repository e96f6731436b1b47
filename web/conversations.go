package web

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// The agents' API: the inbox, conversations, replies, notes, assignment,
// canned responses, availability and transactional messages. Handlers are
// thin: conversations.Service owns every change.

// authorOf is who writes as staff: the signed-in user, or an API key (a
// bot or a backend system).
func authorOf(c *fiber.Ctx) conversations.Author {
	if k := apiKeyOf(c); k != nil {
		return conversations.Author{KeyID: k.ID, Name: k.Name}
	}
	if u := sessionOf(c); u != nil {
		return conversations.Author{UserID: u.user.ID, Name: u.user.Name}
	}
	return conversations.Author{}
}

func queryInt(c *fiber.Ctx, name string) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, invalid.Field(name, "must be a whole number")
	}
	return n, nil
}

// queryLimit reads ?limit=: absent is 0 (the listing's default); present,
// it must be 1..most, or the caller would get another page size than asked.
func queryLimit(c *fiber.Ctx, most int64) (int64, error) {
	n, err := queryInt(c, "limit")
	if err != nil {
		return 0, err
	}
	if c.Query("limit") != "" && (n < 1 || n > most) {
		return 0, invalid.Fieldf("limit", "must be between 1 and %d", most)
	}
	return n, nil
}

// beforePage reads a newest-first page's ?before= (an id, 0 for the
// newest) and ?limit= (see queryLimit).
func beforePage(c *fiber.Ctx, most int64) (before, limit int64, err error) {
	if before, err = queryInt(c, "before"); err != nil {
		return 0, 0, err
	}
	limit, err = queryLimit(c, most)
	return before, limit, err
}

// subscriberConversations lists a subscriber's conversations (one per
// app), for their page in the console.
func (s *Server) subscriberConversations(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a subscriber")
	if err != nil {
		return err
	}
	items, err := s.Conversations.OfSubscriber(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items})
}

func (s *Server) listConversations(c *fiber.Ctx) error {
	team, err := queryInt(c, "team_id")
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, 200)
	if err != nil {
		return err
	}
	page, err := s.Conversations.Inbox(c.UserContext(), conversations.Filter{Status: conversations.Status(c.Query("status")),
		Assignee: c.Query("assignee"), Me: authorOf(c).UserID, TeamID: team, Label: c.Query("label"),
		After: c.Query("after"), Limit: int(limit)})
	if err != nil {
		return err
	}
	return c.JSON(page)
}

func (s *Server) conversationCounts(c *fiber.Ctx) error {
	counts, err := s.Conversations.InboxCounts(c.UserContext(), authorOf(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(counts)
}

func (s *Server) searchMessages(c *fiber.Ctx) error {
	before, limit, err := beforePage(c, 100)
	if err != nil {
		return err
	}
	hits, err := s.Conversations.Search(c.UserContext(), c.Query("q"), before, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": hits})
}

func (s *Server) getConversation(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a conversation")
	if err != nil {
		return err
	}
	d, err := s.Conversations.Detail(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Server) conversationMessages(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a conversation")
	if err != nil {
		return err
	}
	before, limit, err := beforePage(c, 200)
	if err != nil {
		return err
	}
	msgs, err := s.Conversations.Messages(c.UserContext(), id, conversations.Page{Before: before, Limit: int(limit)})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": msgs})
}

func (s *Server) replyToConversation(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a conversation")
	if err != nil {
		return err
	}
	var req conversations.Reply
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	m, err := s.Conversations.Reply(c.UserContext(), actorOf(c), authorOf(c), id, req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(m)
}

func (s *Server) pickUpConversation(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a conversation")
	if err != nil {
		return err
	}
	a := authorOf(c)
	if a.UserID == 0 {
		return invalid.Field("assignee_id", "an API key holds no conversations: assign one to a user")
	}
	conv, err := s.Conversations.PickUp(c.UserContext(), actorOf(c), id, a.UserID)
	if err != nil {
		return err
	}
	return c.JSON(conv)
}

func (s *Server) assignConversation(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a conversation")
	if err != nil {
		return err
	}
	var req conversations.Assignment
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	conv, err := s.Conversations.Assign(c.UserContext(), actorOf(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(conv)
}

func (s *Server) conversationState(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a conversation")
	if err != nil {
		return err
	}
	var conv *conversations.Conversation
	switch c.Params("action") {
	case "resolve":
		conv, err = s.Conversations.Resolve(c.UserContext(), actorOf(c), id)
	case "reopen":
		conv, err = s.Conversations.Reopen(c.UserContext(), actorOf(c), id)
	case "pending":
		conv, err = s.Conversations.SetPending(c.UserContext(), actorOf(c), id)
	case "read":
		conv, err = s.Conversations.MarkReadByStaff(c.UserContext(), actorOf(c), id)
	case "snooze":
		var req struct {
			Until time.Time `json:"until"`
		}
		if err := s.decodeJSON(c, &req); err != nil {
			return err
		}
		conv, err = s.Conversations.Snooze(c.UserContext(), actorOf(c), id, req.Until)
	case "typing":
		if err := s.Conversations.AgentTyping(c.UserContext(), id, authorOf(c)); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	case "viewing":
		a := authorOf(c)
		if a.UserID == 0 {
			return c.SendStatus(fiber.StatusNoContent) // a bot views nothing
		}
		if err := s.Conversations.Viewing(c.UserContext(), id, a); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	default:
		return fiber.ErrNotFound
	}
	if err != nil {
		return err
	}
	return c.JSON(conv)
}

func (s *Server) setConversationLabels(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a conversation")
	if err != nil {
		return err
	}
	var req struct {
		Labels []string `json:"labels"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	conv, err := s.Conversations.SetLabels(c.UserContext(), actorOf(c), id, req.Labels)
	if err != nil {
		return err
	}
	return c.JSON(conv)
}

func (s *Server) staffAttachment(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "an attachment")
	if err != nil {
		return err
	}
	a, err := s.Conversations.AttachmentOf(c.UserContext(), id, 0)
	if err != nil {
		return err
	}
	url, expires := s.Conversations.AttachmentURL(a)
	return c.JSON(fiber.Map{"attachment": a, "url": url, "expires_at": expires})
}

func (s *Server) listCanned(c *fiber.Ctx) error {
	items, err := s.Conversations.CannedResponses(c.UserContext(), c.Query("q"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items})
}

func (s *Server) createCanned(c *fiber.Ctx) error {
	var req conversations.CannedParams
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	cr, err := s.Conversations.CreateCanned(c.UserContext(), actorOf(c), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(cr)
}

func (s *Server) updateCanned(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a canned response")
	if err != nil {
		return err
	}
	var req conversations.CannedParams
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	cr, err := s.Conversations.UpdateCanned(c.UserContext(), actorOf(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(cr)
}

func (s *Server) deleteCanned(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a canned response")
	if err != nil {
		return err
	}
	if err := s.Conversations.DeleteCanned(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listAgents(c *fiber.Ctx) error {
	agents, err := s.Conversations.Agents(c.UserContext(), 0)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": agents})
}

func (s *Server) setMyAvailability(c *fiber.Ctx) error {
	a := authorOf(c)
	if a.UserID == 0 {
		return invalid.Field("available", "an API key has no availability: sign in as the agent")
	}
	var req struct {
		Available *bool `json:"available"`
		Capacity  *int  `json:"capacity"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Available == nil {
		return invalid.Field("available", "is required")
	}
	av, err := s.Conversations.SetAvailability(c.UserContext(), actorOf(c), a.UserID, *req.Available, req.Capacity)
	if err != nil {
		return err
	}
	return c.JSON(av)
}

func (s *Server) setTeamAutoAssign(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a team")
	if err != nil {
		return err
	}
	var req struct {
		AutoAssign *bool `json:"auto_assign"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.AutoAssign == nil {
		return invalid.Field("auto_assign", "is required")
	}
	if err := s.Conversations.SetTeamAutoAssign(c.UserContext(), actorOf(c), id, *req.AutoAssign); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"team_id": id, "auto_assign": *req.AutoAssign})
}

func (s *Server) setAppInbox(c *fiber.Ctx) error {
	app, err := apps.Get(c.UserContext(), s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	var req struct {
		TeamID *int64 `json:"team_id"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.TeamID == nil {
		return invalid.Field("team_id", "is required (0 for none)")
	}
	if err := s.Conversations.SetAppInbox(c.UserContext(), actorOf(c), app.ID, *req.TeamID); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"app": app.Slug, "team_id": *req.TeamID})
}

func (s *Server) getListKeywords(c *fiber.Ctx) error {
	l, err := subscribers.GetList(c.UserContext(), s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	k, err := s.Conversations.ListKeywords(c.UserContext(), l.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"keywords": k, "defaults": conversations.DefaultKeywords})
}

func (s *Server) setListKeywords(c *fiber.Ctx) error {
	l, err := subscribers.GetList(c.UserContext(), s.Pool, c.Params("slug"))
	if err != nil {
		return err
	}
	var req conversations.Keywords
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	k, err := s.Conversations.SetListKeywords(c.UserContext(), actorOf(c), l.ID, req)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"keywords": k, "defaults": conversations.DefaultKeywords})
}

// sendTransactional is the company's systems' message to one subscriber.
func (s *Server) sendTransactional(c *fiber.Ctx) error {
	var req struct {
		conversations.Transactional
		App string `json:"app"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.App == "" {
		return invalid.Field("app", "is required: the app whose devices get the message")
	}
	app, err := apps.Get(c.UserContext(), s.Pool, req.App)
	if err != nil {
		return invalid.Field("app", "no such app")
	}
	req.AppID = app.ID
	m, created, err := s.Conversations.SendTransactional(c.UserContext(), actorOf(c), authorOf(c), req.Transactional)
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if !created {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(m)
}

func (s *Server) getMessage(c *fiber.Ctx) error {
	id, err := pathID(c, "id", "a message")
	if err != nil {
		return err
	}
	m, err := s.Conversations.Message(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(m)
}

// readsConversations reports whether a role may read conversations.
func readsConversations(r access.Role) bool { return r == access.RoleAdmin || r == access.RoleAgent }
