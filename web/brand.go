package web

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/subscribers"
)

// pageBrand is who sends, as a subscriber page shows it: the app's logo and
// name (or its company's), the company, its privacy policy and imprint, and
// a stylesheet with the app's or the list's colour.
type pageBrand struct {
	Name       string
	Company    string
	PrivacyURL string
	ImprintURL string
	LogoURL    string
	ThemeURL   string
}

// logoPath is where an app's logo is served; a changed logo is a new URL,
// so that it may be cached for a day.
func logoPath(app *apps.App) string {
	return "/brand/" + app.Slug + "/logo?v=" + strconv.FormatInt(app.UpdatedAt.Unix(), 10)
}

// brandOf is app's brand on a page about list (nil for none).
func brandOf(app *apps.App, list *subscribers.List) *pageBrand {
	b := &pageBrand{Name: app.Name, Company: app.CompanyName, PrivacyURL: app.PrivacyURL, ImprintURL: app.ImprintURL}
	if app.CompanyName != "" {
		b.Name = app.CompanyName
	}
	if app.LogoType != "" {
		b.LogoURL = logoPath(app)
	}
	// A public list's own logo stands for it on its pages.
	if list != nil && list.LogoType != "" && list.Visibility == "public" {
		b.LogoURL = "/brand/lists/" + list.Slug + "/logo?v=" + strconv.FormatInt(list.UpdatedAt.Unix(), 10)
	}
	if app.AccentColor != "" || (list != nil && list.AccentColor != "") {
		b.ThemeURL = "/brand/" + app.Slug + "/theme.css?v=" + strconv.FormatInt(app.UpdatedAt.Unix(), 10)
		if list != nil && list.AccentColor != "" {
			b.ThemeURL += "&list=" + list.Slug + "&lv=" + strconv.FormatInt(list.UpdatedAt.Unix(), 10)
		}
	}
	return b
}

// subscriberApp is the app a subscriber's pages speak for: the app of their
// most recently active device, else the default app.
func (s *Server) subscriberApp(ctx context.Context, subscriberID int64) (*apps.App, error) {
	var id int64
	err := s.Pool.QueryRow(ctx, `SELECT app_id FROM devices WHERE subscriber_id = $1
		ORDER BY active DESC, updated_at DESC LIMIT 1`, subscriberID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.defaultApp(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("web: subscriber's app: %w", err)
	}
	return apps.GetByID(ctx, s.Pool, id)
}

func (s *Server) defaultApp(ctx context.Context) (*apps.App, error) {
	app, err := apps.Get(ctx, s.Pool, apps.DefaultSlug)
	if errors.Is(err, apps.ErrNotFound) {
		return nil, nil // no default app (renamed or never made): Herald's own look
	}
	return app, err
}

// subscriberBrand is brandOf the subscriber's app (see subscriberApp).
func (s *Server) subscriberBrand(ctx context.Context, subscriberID int64, list *subscribers.List) (*pageBrand, error) {
	app, err := s.subscriberApp(ctx, subscriberID)
	if err != nil || app == nil {
		return nil, err
	}
	return brandOf(app, list), nil
}

// brandLogo serves an app's logo.
func (s *Server) brandLogo(c *fiber.Ctx) error {
	data, typ, _, err := apps.Logo(c.UserContext(), s.Pool, c.Params("app"))
	return sendLogo(c, data, typ, err, apps.ErrNotFound, apps.ErrNoLogo)
}

// listLogo serves a public list's own logo.
func (s *Server) listLogo(c *fiber.Ctx) error {
	data, typ, _, err := subscribers.ListLogo(c.UserContext(), s.Pool, c.Params("list"))
	return sendLogo(c, data, typ, err, subscribers.ErrNotFound, subscribers.ErrNoLogo)
}

// sendLogo answers with a logo, cacheable for a day (a changed logo is a
// new URL on the pages), or 404 when err is one of missing.
func sendLogo(c *fiber.Ctx, data []byte, typ string, err error, missing ...error) error {
	for _, m := range missing {
		if errors.Is(err, m) {
			return fiber.ErrNotFound
		}
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, typ)
	c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
	return c.Send(data)
}

// brandTheme is a stylesheet with an app's colour, or a list's (?list=).
func (s *Server) brandTheme(c *fiber.Ctx) error {
	ctx := c.UserContext()
	app, err := apps.Get(ctx, s.Pool, c.Params("app"))
	if err != nil {
		return err
	}
	color := app.AccentColor
	if slug := c.Query("list"); slug != "" {
		list, err := subscribers.GetList(ctx, s.Pool, slug)
		if err != nil {
			return err
		}
		// Private lists have no pages: their colour is nobody's business.
		if list.Visibility == "public" && list.AccentColor != "" {
			color = list.AccentColor
		}
	}
	c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	if color == "" {
		return c.SendString("/* Herald's own colours */\n")
	}
	// Validated as #rrggbb when stored (brand.ValidateColor), and by the
	// database's CHECK.
	return c.SendString(":root { --accent: " + color + "; }\n")
}
