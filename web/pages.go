package web

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
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
	// Rejoin holds, by list id, the public lists a preference page offers
	// to join again, with the consent text to agree to.
	Rejoin map[int64]*subscribers.List
	// L is the page's texts in its language (see langOf).
	L map[string]string
	// Brand is who sends; nil takes the default app's.
	Brand *pageBrand
}

func (s *Server) render(c *fiber.Ctx, status int, name string, d pageData) error {
	if d.L == nil {
		d.L = messages[s.langOf(c)]
	}
	if d.Brand == nil {
		app, err := s.defaultApp(c.UserContext())
		if err != nil {
			return err
		}
		if app != nil {
			d.Brand = brandOf(app, nil)
		}
	}
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
	var status int
	var key string
	switch {
	case errors.Is(err, optin.ErrTokenExpired):
		// Only confirmation links end here: unsubscribe links always work
		// and an expired preferences link still leaves every list.
		status, key = fiber.StatusGone, "SubExpired"
	case errors.Is(err, optin.ErrTokenUsed):
		status, key = fiber.StatusConflict, "SubUsed"
	case errors.Is(err, optin.ErrNothingToConfirm):
		status, key = fiber.StatusConflict, "SubNothing"
	case errors.Is(err, optin.ErrTokenInvalid):
		status, key = fiber.StatusNotFound, "SubInvalid"
	default:
		return err
	}
	l := messages[s.langOf(c)]
	return s.render(c, status, "message.html", pageData{L: l, Title: l[key+"Title"], Heading: l[key+"Heading"], Message: l[key+"Text"]})
}

// notFoundPage says, in the page's language, that a list or app does not
// exist (key: SubNoSuchList or SubNoSuchApp).
func (s *Server) notFoundPage(c *fiber.Ctx, key string) error {
	l := messages[s.langOf(c)]
	return s.render(c, fiber.StatusNotFound, "message.html", pageData{L: l, Title: l["SubNotFound"], Heading: l[key]})
}

// expiredPreferences is what an expired but authentic preferences link
// shows: none of the subscriptions (whoever holds an old link should not
// read them), and one press to leave every list.
func (s *Server) expiredPreferences(c *fiber.Ctx) error {
	l := messages[s.langOf(c)]
	return s.render(c, fiber.StatusOK, "message.html", pageData{L: l,
		Title: l["SubPrefsTitle"], Heading: l["SubPrefsOldHeading"], Message: l["SubPrefsOldText"],
		Action: "/preferences/" + c.Params("token"), ButtonLabel: l["SubLeaveEvery"],
	})
}

func (s *Server) optInPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	list, err := subscribers.GetList(ctx, s.Pool, c.Params("list"))
	if errors.Is(err, subscribers.ErrNotFound) || (err == nil && list.Visibility != "public") {
		return s.notFoundPage(c, "SubNoSuchList")
	}
	if err != nil {
		return err
	}
	slug := c.Query("app", apps.DefaultSlug)
	app, err := apps.Get(ctx, s.Pool, slug)
	if errors.Is(err, apps.ErrNotFound) {
		return s.notFoundPage(c, "SubNoSuchApp")
	}
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "optin.html", pageData{Title: list.Name, List: list, App: app.Slug, VAPIDKey: app.VAPIDPublicKey,
		Brand: brandOf(app, list)})
}

func (s *Server) confirmPage(c *fiber.Ctx) error {
	p, err := s.OptIn.InspectConfirm(c.UserContext(), c.Params("token"))
	if err != nil {
		return s.tokenPage(c, err)
	}
	l := messages[s.langOf(c)]
	b, err := s.subscriberBrand(c.UserContext(), p.SubscriberID, p.List)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "message.html", pageData{L: l, Brand: b,
		Title: l["SubConfirmTitle"], Heading: l["SubConfirmHeading"], Message: fmt.Sprintf(l["SubConfirmText"], p.List.Name),
		Action: "/confirm/" + c.Params("token"), ButtonLabel: l["SubConfirmButton"],
	})
}

func (s *Server) confirmSubmit(c *fiber.Ctx) error {
	p, err := s.OptIn.Confirm(c.UserContext(), audit.Public(clientIP(c)), c.Params("token"), optin.Client{IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)})
	if err != nil {
		return s.tokenPage(c, err)
	}
	l := messages[s.langOf(c)]
	b, err := s.subscriberBrand(c.UserContext(), p.SubscriberID, p.List)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "message.html", pageData{L: l, Brand: b,
		Title: l["SubConfirmedTitle"], Heading: l["SubConfirmedHeading"], Message: fmt.Sprintf(l["SubConfirmedText"], p.List.Name),
		Link: s.OptIn.PreferencesURL(p.SubscriberID), LinkLabel: l["SubManage"],
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
	l := messages[s.langOf(c)]
	what := unsubscribeWhat(l, u)
	b, err := s.subscriberBrand(c.UserContext(), u.SubscriberID, u.List)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "message.html", pageData{L: l, Brand: b,
		Title: l["SubUnsubTitle"], Heading: fmt.Sprintf(l["SubUnsubHeading"], what), Message: fmt.Sprintf(l["SubUnsubText"], what),
		Action: "/u/" + c.Params("token"), ButtonLabel: l["SubUnsubButton"],
	})
}

func (s *Server) unsubscribeSubmit(c *fiber.Ctx) error {
	u, err := s.OptIn.UnsubscribeByLink(c.UserContext(), audit.Public(clientIP(c)), c.Params("token"), optin.Client{IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)})
	if err != nil {
		return s.tokenPage(c, err)
	}
	l := messages[s.langOf(c)]
	b, err := s.subscriberBrand(c.UserContext(), u.SubscriberID, u.List)
	if err != nil {
		return err
	}
	d := pageData{L: l, Brand: b, Title: l["SubUnsubscribedTitle"], Heading: l["SubUnsubscribedHeading"],
		Message: fmt.Sprintf(l["SubUnsubscribedText"], unsubscribeWhat(l, u))}
	if !u.Expired {
		// An old link unsubscribes, and leads nowhere else: a preferences
		// link would show the lists to whoever holds it.
		d.Link, d.LinkLabel = s.OptIn.PreferencesURL(u.SubscriberID), l["SubOtherSubs"]
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
	return s.renderPreferences(c, subID, "")
}

// renderPreferences shows a subscriber's lists; a list they left that is
// public can be joined again, its consent text shown beside the button.
func (s *Server) renderPreferences(c *fiber.Ctx, subID int64, notice string) error {
	ctx := c.UserContext()
	m, err := s.OptIn.Memberships(ctx, subID)
	if err != nil {
		return err
	}
	var left []int64
	for _, ms := range m {
		if ms.Status == subscribers.StatusUnsubscribed {
			left = append(left, ms.ListID)
		}
	}
	rejoin, err := subscribers.PublicListsByID(ctx, s.Pool, left)
	if err != nil {
		return err
	}
	l := messages[s.langOf(c)]
	b, err := s.subscriberBrand(ctx, subID, nil)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "preferences.html", pageData{L: l, Brand: b, Title: l["SubPrefsTitle"], Message: notice,
		Memberships: m, Rejoin: rejoin, Token: c.Params("token")})
}

func (s *Server) preferencesSubmit(c *fiber.Ctx) error {
	subID, err := s.OptIn.PreferencesSubscriber(c.Params("token"))
	expired := errors.Is(err, optin.ErrTokenExpired)
	if err != nil && !expired {
		return s.tokenPage(c, err)
	}
	ctx := c.UserContext()
	if c.FormValue("action") == "rejoin" {
		if expired {
			// Joining again needs a link that still shows the lists;
			// nothing is left for pressing it on an old one.
			return s.expiredPreferences(c)
		}
		return s.rejoin(c, subID)
	}
	var listID int64
	if slug := c.FormValue("list"); slug != "" && !expired {
		l, err := subscribers.GetList(ctx, s.Pool, slug)
		if errors.Is(err, subscribers.ErrNotFound) {
			return s.notFoundPage(c, "SubNoSuchList")
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
		l := messages[s.langOf(c)]
		return s.render(c, fiber.StatusOK, "message.html", pageData{L: l, Title: l["SubUnsubscribedTitle"],
			Heading: l["SubLeftEveryHeading"], Message: l["SubLeftEveryText"]})
	}
	return c.Redirect("/preferences/"+c.Params("token"), fiber.StatusSeeOther)
}

// unsubscribeWhat names what an unsubscribe link leaves: its list, or every
// list in the page's language.
func unsubscribeWhat(l map[string]string, u *optin.Unsubscription) string {
	if u.List == nil {
		return l["SubAllLists"]
	}
	return u.List.Name
}

// rejoin joins again a list the subscriber left, from their preference
// page: the press, with the consent text version the page showed, is their
// consent.
//
// Unlike leaving, it must come from the page itself: a browser's Origin
// naming Herald (another site could otherwise post consent in a visitor's
// name), and it spends the subscriber's budget, so that leaving and
// joining in a loop cannot fill the consent log and the webhooks.
func (s *Server) rejoin(c *fiber.Ctx, subID int64) error {
	if c.Get(fiber.HeaderOrigin) == "" || !s.sameOrigin(c) {
		return problem(c, fiber.StatusForbidden, "Forbidden", "joining a list again is done on the preference page itself")
	}
	if ok, wait := s.subLimit.allow("rejoin:" + strconv.FormatInt(subID, 10)); !ok {
		return tooMany(wait, "too many changes to these subscriptions")
	}
	ctx := c.UserContext()
	list, err := subscribers.GetList(ctx, s.Pool, c.FormValue("list"))
	if errors.Is(err, subscribers.ErrNotFound) {
		return s.notFoundPage(c, "SubNoSuchList")
	}
	if err != nil {
		return err
	}
	version, err := strconv.Atoi(c.FormValue("consent_version"))
	if err != nil {
		return invalid.Field("consent_version", "must be the version of the consent text shown")
	}
	ev := subscribers.Evidence{Source: subscribers.SourceWeb, IP: clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)}
	err = s.OptIn.Resubscribe(ctx, audit.Public(clientIP(c)), subID, list.ID, version, ev)
	l := messages[s.langOf(c)]
	switch {
	case errors.Is(err, optin.ErrConsentChanged):
		// The text changed since the page was shown: show the new one.
		return s.renderPreferences(c, subID, l["SubConsentChanged"])
	case errors.Is(err, optin.ErrNotResubscribable):
		return s.renderPreferences(c, subID, l["SubCannotRejoin"])
	case err != nil:
		return err
	}
	return c.Redirect("/preferences/"+c.Params("token"), fiber.StatusSeeOther)
}
