package web

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// pageData is what every template gets.
type pageData struct {
	Title   string
	Heading string
	Message string
	// Action is a form URL for the one button a page asks to press.
	Action      string
	ButtonLabel string
	Link        string
	LinkLabel   string
	List        *subscribers.List
	Memberships []subscribers.Membership
	Token       string
	App         string
	VAPIDKey    string
}

func (s *Server) render(c *fiber.Ctx, status int, name string, d pageData) error {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, d); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).Send(buf.Bytes())
}

// tokenPage turns a link problem into a page a person understands.
func (s *Server) tokenPage(c *fiber.Ctx, err error) error {
	switch {
	case errors.Is(err, optin.ErrTokenExpired):
		// Only confirmation links end here: unsubscribe links always work
		// and an expired preferences link still leaves every list.
		return s.render(c, fiber.StatusGone, "message.html", pageData{Title: "Link expired", Heading: "This link has expired",
			Message: "Confirmation links are valid for a limited time. Subscribe again to get a new one."})
	case errors.Is(err, optin.ErrTokenUsed):
		return s.render(c, fiber.StatusConflict, "message.html", pageData{Title: "Already used", Heading: "This link was already used",
			Message: "Each confirmation link works once. If you confirmed already, you are all set."})
	case errors.Is(err, optin.ErrNothingToConfirm):
		return s.render(c, fiber.StatusConflict, "message.html", pageData{Title: "Nothing to confirm", Heading: "There is nothing to confirm",
			Message: "This request was withdrawn or has lapsed. Subscribe again if you still want these messages."})
	case errors.Is(err, optin.ErrTokenInvalid):
		return s.render(c, fiber.StatusNotFound, "message.html", pageData{Title: "Invalid link", Heading: "This link is not valid",
			Message: "Please check that you opened the whole link from your message."})
	}
	return err
}

// expiredPreferences is what an expired but authentic preferences link
// shows: none of the subscriptions (whoever holds an old link should not
// read them), and one press to leave every list.
func (s *Server) expiredPreferences(c *fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, "message.html", pageData{
		Title: "Your subscriptions", Heading: "This link is too old to show your subscriptions",
		Message: "You can still stop every message from us: press the button to leave every list. " +
			"Each message we send also has its own unsubscribe link.",
		Action: "/preferences/" + c.Params("token"), ButtonLabel: "Leave every list",
	})
}

func (s *Server) optInPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	list, err := subscribers.GetList(ctx, s.Pool, c.Params("list"))
	if errors.Is(err, subscribers.ErrNotFound) || (err == nil && list.Visibility != "public") {
		return s.render(c, fiber.StatusNotFound, "message.html", pageData{Title: "Not found", Heading: "There is no such list"})
	}
	if err != nil {
		return err
	}
	slug := c.Query("app", apps.DefaultSlug)
	app, err := apps.Get(ctx, s.Pool, slug)
	if errors.Is(err, apps.ErrNotFound) {
		return s.render(c, fiber.StatusNotFound, "message.html", pageData{Title: "Not found", Heading: "There is no such app"})
	}
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "optin.html", pageData{Title: list.Name, List: list, App: app.Slug, VAPIDKey: app.VAPIDPublicKey})
}

func (s *Server) confirmPage(c *fiber.Ctx) error {
	p, err := s.OptIn.InspectConfirm(c.UserContext(), c.Params("token"))
	if err != nil {
		return s.tokenPage(c, err)
	}
	return s.render(c, fiber.StatusOK, "message.html", pageData{
		Title: "Confirm", Heading: "Confirm your subscription",
		Message: "Press the button to start receiving messages from " + p.List.Name + ".",
		Action:  "/confirm/" + c.Params("token"), ButtonLabel: "Yes, subscribe me",
	})
}

func (s *Server) confirmSubmit(c *fiber.Ctx) error {
	p, err := s.OptIn.Confirm(c.UserContext(), audit.Public(clientIP(c)), c.Params("token"), optin.Client{IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)})
	if err != nil {
		return s.tokenPage(c, err)
	}
	return s.render(c, fiber.StatusOK, "message.html", pageData{
		Title: "Confirmed", Heading: "You are subscribed",
		Message: "You will now receive messages from " + p.List.Name + ". You can leave at any time.",
		Link:    s.OptIn.PreferencesURL(p.SubscriberID), LinkLabel: "Manage your subscriptions",
	})
}

// unsubscribePage asks for one press; a POST to the same URL (what a
// notification's action button, or an email client honouring
// List-Unsubscribe-Post, sends) unsubscribes at once.
func (s *Server) unsubscribePage(c *fiber.Ctx) error {
	u, err := s.OptIn.InspectUnsubscribe(c.UserContext(), c.Params("token"))
	if err != nil {
		return s.tokenPage(c, err)
	}
	what := u.What()
	return s.render(c, fiber.StatusOK, "message.html", pageData{
		Title: "Unsubscribe", Heading: "Unsubscribe from " + what,
		Message: "Press the button and you will receive no more messages from " + what + ".",
		Action:  "/u/" + c.Params("token"), ButtonLabel: "Unsubscribe",
	})
}

func (s *Server) unsubscribeSubmit(c *fiber.Ctx) error {
	u, err := s.OptIn.UnsubscribeByLink(c.UserContext(), audit.Public(clientIP(c)), c.Params("token"), optin.Client{IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)})
	if err != nil {
		return s.tokenPage(c, err)
	}
	d := pageData{Title: "Unsubscribed", Heading: "You are unsubscribed",
		Message: "You will receive no more messages from " + u.What() + "."}
	if !u.Expired {
		// An old link unsubscribes, and leads nowhere else: a preferences
		// link would show the lists to whoever holds it.
		d.Link, d.LinkLabel = s.OptIn.PreferencesURL(u.SubscriberID), "See your other subscriptions"
	}
	return s.render(c, fiber.StatusOK, "message.html", d)
}

func (s *Server) preferencesPage(c *fiber.Ctx) error {
	subID, err := s.OptIn.PreferencesSubscriber(c.Params("token"))
	if errors.Is(err, optin.ErrTokenExpired) {
		return s.expiredPreferences(c)
	}
	if err != nil {
		return s.tokenPage(c, err)
	}
	m, err := s.OptIn.Memberships(c.UserContext(), subID)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "preferences.html", pageData{Title: "Your subscriptions", Memberships: m, Token: c.Params("token")})
}

func (s *Server) preferencesSubmit(c *fiber.Ctx) error {
	subID, err := s.OptIn.PreferencesSubscriber(c.Params("token"))
	expired := errors.Is(err, optin.ErrTokenExpired)
	if err != nil && !expired {
		return s.tokenPage(c, err)
	}
	ctx := c.UserContext()
	var listID int64
	if slug := c.FormValue("list"); slug != "" && !expired {
		l, err := subscribers.GetList(ctx, s.Pool, slug)
		if errors.Is(err, subscribers.ErrNotFound) {
			return s.render(c, fiber.StatusNotFound, "message.html", pageData{Title: "Not found", Heading: "There is no such list"})
		}
		if err != nil {
			return err
		}
		listID = l.ID
	}
	ev := subscribers.Evidence{Source: subscribers.SourceWeb, IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)}
	if err := s.OptIn.Unsubscribe(ctx, audit.Public(clientIP(c)), subID, listID, ev); err != nil {
		return err
	}
	if expired {
		return s.render(c, fiber.StatusOK, "message.html", pageData{Title: "Unsubscribed", Heading: "You left every list",
			Message: "You will receive no more messages from us."})
	}
	return c.Redirect("/preferences/"+c.Params("token"), fiber.StatusSeeOther)
}
