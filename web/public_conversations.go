package web

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/optin"
)

// The subscriber's side of conversations, for app SDKs and the web widget.
// A subscriber proves who they are once (POST /public/v1/conversation/session,
// with an identity HMAC or their subscriber token, as for opt-in) and gets a
// signed conversation token for the other calls, sent as
// "Authorization: Bearer cs_..." (or ?token= on the event stream, which
// EventSource cannot send headers on).

const (
	subscriberLocals = "herald_conversation_subscriber"
	appLocals        = "herald_conversation_app"
)

func conversationCaller(c *fiber.Ctx) (subscriberID, appID int64) {
	sub, _ := c.Locals(subscriberLocals).(int64)
	app, _ := c.Locals(appLocals).(int64)
	return sub, app
}

// subscriberToken admits a conversation call: a token that verifies, then
// one from the subscriber's own budget (so nobody else can spend it).
func (s *Server) subscriberToken(allowQuery bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if c.Method() == fiber.MethodOptions {
			return c.Next()
		}
		token, ok := bearerToken(c)
		if !ok && allowQuery {
			token, ok = c.Query("token"), c.Query("token") != ""
		}
		if !ok {
			return problem(c, fiber.StatusUnauthorized, "Unauthorized",
				"send Authorization: Bearer <conversation token> from POST /public/v1/conversation/session")
		}
		subID, appID, err := s.Conversations.VerifySession(token)
		if err != nil {
			if refused := s.countProof(c, optin.ErrTokenInvalid); refused != nil {
				return refused
			}
			return writeProblem(c, Problem{Type: "about:blank", Title: "Invalid token", Status: fiber.StatusUnauthorized,
				Field: "token", Reason: "is not a conversation token, or it expired: get a new one"})
		}
		if ok, wait := s.subLimit.allow("cs:" + strconv.FormatInt(subID, 10)); !ok {
			return tooMany(wait, "too many requests for this subscriber")
		}
		c.Locals(subscriberLocals, subID)
		c.Locals(appLocals, appID)
		return c.Next()
	}
}

func (s *Server) conversationSession(c *fiber.Ctx) error {
	var id optin.Identity
	if err := s.decodeJSON(c, &id); err != nil {
		return err
	}
	if id.App == "" {
		return invalid.Field("app", "is required")
	}
	if err := s.proofsRefused(c); err != nil {
		return err
	}
	app, err := apps.Get(c.UserContext(), s.Pool, id.App)
	if errors.Is(err, apps.ErrNotFound) {
		return invalid.Field("app", "no such app")
	}
	if err != nil {
		return err
	}
	subID, err := s.identify(c, id)
	if err != nil {
		return err
	}
	if ok, wait := s.subLimit.allow("cs:" + strconv.FormatInt(subID, 10)); !ok {
		return tooMany(wait, "too many requests for this subscriber")
	}
	token, expires := s.Conversations.SessionToken(subID, app.ID)
	return c.JSON(fiber.Map{"token": token, "expires_at": expires, "subscriber_id": subID})
}

func (s *Server) subscriberSend(c *fiber.Ctx) error {
	subID, appID := conversationCaller(c)
	var req conversations.SendRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	m, created, err := s.Conversations.Send(c.UserContext(), audit.Subscriber(subID, clientIP(c)), subID, appID, req)
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if !created {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(m)
}

func (s *Server) subscriberHistory(c *fiber.Ctx) error {
	subID, appID := conversationCaller(c)
	before, limit, err := beforePage(c, 200)
	if err != nil {
		return err
	}
	msgs, err := s.Conversations.History(c.UserContext(), subID, appID, conversations.Page{Before: before, Limit: int(limit)})
	if err != nil {
		return err
	}
	// Whether staff have read everything the subscriber sent: the widget's
	// seen mark after a reload (the stream's read events say it live).
	seen := false
	conv, err := s.Conversations.SubscriberConversation(c.UserContext(), subID, appID)
	switch {
	case err == nil:
		seen = conv.Unread == 0
	case !errors.Is(err, conversations.ErrNotFound):
		return err
	}
	return c.JSON(fiber.Map{"items": msgs, "seen": seen})
}

// subscriberBroadcasts lists the app's campaigns that reached the
// subscriber, for the widget to show beside their conversation.
func (s *Server) subscriberBroadcasts(c *fiber.Ctx) error {
	subID, appID := conversationCaller(c)
	before, limit, err := beforePage(c, 50)
	if err != nil {
		return err
	}
	if s.Campaigns == nil {
		return c.JSON(fiber.Map{"items": []campaigns.Broadcast{}})
	}
	items, err := s.Campaigns.Received(c.UserContext(), subID, appID, before, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items})
}

func (s *Server) subscriberRead(c *fiber.Ctx) error {
	subID, appID := conversationCaller(c)
	var req struct {
		UpTo int64 `json:"up_to"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.UpTo <= 0 {
		return invalid.Field("up_to", "must be the id of the newest message read")
	}
	if err := s.Conversations.MarkReadBySubscriber(c.UserContext(), audit.Subscriber(subID, clientIP(c)), subID, appID, req.UpTo); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) subscriberTyping(c *fiber.Ctx) error {
	subID, appID := conversationCaller(c)
	// Typing is repeated while someone types: one signal per few seconds
	// is all a view needs, and the rest costs nothing.
	if ok, _ := s.typingLimit.allow(strconv.FormatInt(subID, 10)); !ok {
		return c.SendStatus(fiber.StatusNoContent)
	}
	err := s.Conversations.SubscriberTyping(c.UserContext(), subID, appID)
	if err != nil && !errors.Is(err, conversations.ErrNotFound) {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) subscriberUpload(c *fiber.Ctx) error {
	subID, appID := conversationCaller(c)
	a, err := s.Conversations.Upload(c.UserContext(), audit.Subscriber(subID, clientIP(c)), subID, appID, c.Body())
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}

func (s *Server) subscriberAttachment(c *fiber.Ctx) error {
	subID, _ := conversationCaller(c)
	id, err := pathID(c, "id", "an attachment")
	if err != nil {
		return err
	}
	a, err := s.Conversations.AttachmentOf(c.UserContext(), id, subID)
	if err != nil {
		return err
	}
	url, expires := s.Conversations.AttachmentURL(a)
	return c.JSON(fiber.Map{"attachment": a, "url": url, "expires_at": expires})
}

// attachmentBytes serves an attachment through its signed, short-lived
// link. The answer is never cached and never rendered as a page: images
// show, anything else downloads.
func (s *Server) attachmentBytes(c *fiber.Ctx) error {
	a, data, err := s.Conversations.OpenAttachment(c.UserContext(), c.Params("token"))
	if errors.Is(err, conversations.ErrBadToken) || errors.Is(err, conversations.ErrNotFound) {
		return problem(c, fiber.StatusNotFound, "Not found", "the link is unknown or expired")
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; sandbox")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if !strings.HasPrefix(a.ContentType, "image/") {
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="attachment-`+strconv.FormatInt(a.ID, 10)+`.pdf"`)
	}
	c.Set(fiber.HeaderContentType, a.ContentType)
	return c.Send(data)
}

func (s *Server) receipt(c *fiber.Ctx) error {
	var req struct {
		Token string `json:"token"`
		Event string `json:"event"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	var err error
	if strings.HasPrefix(req.Token, conversations.ReceiptPrefix) {
		err = s.Conversations.Receipt(c.UserContext(), audit.Public(clientIP(c)), req.Token, req.Event)
	} else if s.Campaigns != nil {
		err = s.Campaigns.Receipt(c.UserContext(), req.Token, req.Event)
	} else {
		err = conversations.ErrBadToken
	}
	if isBadToken(err) {
		return invalid.Field("token", "is not a receipt token Herald issued")
	}
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) messageButtonTap(c *fiber.Ctx) error {
	var req struct {
		Token  string `json:"token"`
		Button string `json:"button"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	m, err := s.Conversations.Tap(c.UserContext(), audit.Public(clientIP(c)), req.Token, req.Button)
	if isBadToken(err) || errors.Is(err, conversations.ErrNotFound) {
		return invalid.Field("token", "is not the receipt token of a message with buttons")
	}
	if err != nil {
		return err
	}
	if m == nil {
		return c.SendStatus(fiber.StatusNoContent) // tapped before: it landed then
	}
	return c.Status(fiber.StatusCreated).JSON(m)
}

func isBadToken(err error) bool {
	return errors.Is(err, conversations.ErrBadToken) || errors.Is(err, campaigns.ErrBadToken)
}

// admitSubscriber lets a bounded number of subscriber calls use the
// database at once. Under a flood of inbound messages the rest wait here,
// holding no connection, so that agents' replies, their pushes and River's
// own work still find one; a call that waits too long gets a 503 with
// Retry-After, and nothing was written.
func (s *Server) admitSubscriber(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodOptions {
		return c.Next()
	}
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
	select {
	case s.subscriberSlots <- struct{}{}:
	case <-wait.C:
		c.Set(fiber.HeaderRetryAfter, "2")
		return problem(c, fiber.StatusServiceUnavailable, "Busy", "too many messages at once; retry after the Retry-After seconds")
	case <-c.UserContext().Done():
		return c.UserContext().Err()
	}
	defer func() { <-s.subscriberSlots }()
	return c.Next()
}
