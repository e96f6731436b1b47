// Package web is Herald's HTTP layer: the admin JSON API under /api/v1, the
// public API under /public/v1 for opt-in pages and app SDKs, the hosted pages
// (opt-in, confirm, unsubscribe, preferences), health, readiness and metrics.
// It is the only package that maps errors to status codes.
package web

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/optin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps is what the HTTP layer needs.
type Deps struct {
	Config *config.Config
	Pool   *pgxpool.Pool
	River  *river.Client[pgx.Tx]
	OptIn  *optin.Service
	// Campaigns may be nil in processes that serve no campaign API.
	Campaigns *campaigns.Service
	Apps      *apps.Store
	Logger    *slog.Logger
	Registry  *prometheus.Registry
	// Ready reports whether the process can serve (database reachable,
	// migrations current).
	Ready func(context.Context) error
}

// Server holds the handlers' dependencies.
type Server struct {
	Deps
	pages     *template.Template
	ipLimit   *limiter
	subLimit  *limiter
	httpCount *prometheus.CounterVec
	httpTime  *prometheus.HistogramVec
}

// New builds the fiber app with every route.
func New(d Deps) *fiber.App {
	s := &Server{
		Deps:     d,
		pages:    template.Must(template.ParseFS(templateFS, "templates/*.html")),
		ipLimit:  newLimiter(d.Config.RateLimitPerIP, time.Minute),
		subLimit: newLimiter(d.Config.RateLimitPerSubscriber, time.Minute),
	}
	s.registerMetrics()
	app := fiber.New(fiber.Config{
		AppName:               "herald",
		DisableStartupMessage: true,
		BodyLimit:             d.Config.MaxImportBytes,
		StreamRequestBody:     true,
		ReadBufferSize:        16 << 10, // room for long push endpoints and tokens in URLs
		ReadTimeout:           2 * time.Minute,
		WriteTimeout:          2 * time.Minute,
		IdleTimeout:           2 * time.Minute,
		ErrorHandler:          s.handleError,
		ProxyHeader:           proxyHeader(d.Config.TrustProxy),
		// fiber's strings otherwise alias pooled request buffers, and what
		// outlives a request (Prometheus label values, first of all) would be
		// rewritten underneath by a later one.
		Immutable: true,
	})
	app.Use(s.recoverPanics, s.observe)

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metrics)
	app.Get("/", s.home)

	api := app.Group("/api/v1", s.authenticate)
	adminOrMarketer := s.allow(apikeys.RoleAdmin, apikeys.RoleMarketer)
	anyRole := s.allow(apikeys.RoleAdmin, apikeys.RoleMarketer, apikeys.RoleAgent)
	admin := s.allow(apikeys.RoleAdmin)

	api.Get("/lists", adminOrMarketer, s.listLists)
	api.Post("/lists", adminOrMarketer, s.createList)
	api.Get("/lists/:slug", adminOrMarketer, s.getList)
	api.Patch("/lists/:slug", adminOrMarketer, s.updateList)
	api.Delete("/lists/:slug", adminOrMarketer, s.deleteList)
	api.Put("/lists/:slug/subscribers/:id", adminOrMarketer, s.setMembership)

	api.Get("/subscribers", anyRole, s.listSubscribers)
	api.Post("/subscribers", adminOrMarketer, s.createSubscriber)
	api.Get("/subscribers/:id", anyRole, s.getSubscriber)
	api.Patch("/subscribers/:id", adminOrMarketer, s.updateSubscriber)
	api.Delete("/subscribers/:id", admin, s.eraseSubscriber)
	api.Post("/subscribers/:id/erase", admin, s.eraseSubscriber)
	api.Get("/subscribers/:id/export", admin, s.exportSubscriber)
	api.Put("/subscribers/:id/devices/:device", admin, s.markTestDevice)

	api.Post("/campaigns", adminOrMarketer, s.createCampaign)
	api.Get("/campaigns", adminOrMarketer, s.listCampaigns)
	api.Get("/campaigns/:id", adminOrMarketer, s.getCampaign)
	api.Patch("/campaigns/:id", adminOrMarketer, s.updateCampaign)
	api.Get("/campaigns/:id/preview", adminOrMarketer, s.previewCampaign)
	api.Get("/campaigns/:id/stats", adminOrMarketer, s.campaignStats)
	api.Get("/campaigns/:id/deliveries", adminOrMarketer, s.campaignDeliveries)
	api.Post("/campaigns/:id/:action", adminOrMarketer, s.campaignAction)

	api.Post("/imports", adminOrMarketer, s.createImport)
	api.Get("/imports/:id", adminOrMarketer, s.getImport)

	api.Post("/apps", admin, s.createApp)
	api.Get("/apps/:slug", admin, s.getApp)
	api.Put("/apps/:slug/credentials/:platform", admin, s.setCredentials)
	api.Delete("/apps/:slug/credentials/:platform", admin, s.deleteCredentials)
	api.Post("/api-keys", admin, s.createAPIKey)
	api.Get("/api-keys", admin, s.listAPIKeys)
	api.Delete("/api-keys/:id", admin, s.revokeAPIKey)

	pub := app.Group("/public/v1", s.cors, s.limitByIP)
	pub.Get("/apps/:app", s.publicApp)
	pub.Post("/subscribe", s.subscribe)
	pub.Post("/preferences", s.publicPreferences)
	pub.Post("/unsubscribe", s.publicUnsubscribe)
	pub.Post("/campaign-actions", s.campaignActionTap)

	pages := app.Group("", s.limitByIP, s.pageHeaders)
	pages.Get("/l/:list", s.optInPage)
	pages.Get("/c/:token", s.click)
	pages.Get("/confirm/:token", s.confirmPage)
	pages.Post("/confirm/:token", s.confirmSubmit)
	pages.Get("/u/:token", s.unsubscribePage)
	pages.Post("/u/:token", s.unsubscribeSubmit)
	pages.Get("/preferences/:token", s.preferencesPage)
	pages.Post("/preferences/:token", s.preferencesSubmit)
	app.Get("/sw.js", s.static("static/sw.js", "text/javascript"))
	app.Get("/embed.js", s.cors, s.static("static/embed.js", "text/javascript"))
	app.Get("/static/style.css", s.static("static/style.css", "text/css"))

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return app
}

func proxyHeader(trust bool) string {
	if trust {
		return fiber.HeaderXForwardedFor
	}
	return ""
}

func (s *Server) static(name, contentType string) fiber.Handler {
	body, err := staticFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, contentType+"; charset=utf-8")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(body)
	}
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		s.Logger.Warn("not ready", "error", err)
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "reason": err.Error()})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (s *Server) home(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{
		"name": "herald", "api": "/api/v1", "public_api": "/public/v1",
		"docs": "docs/api.md in the Herald repository",
	})
}
