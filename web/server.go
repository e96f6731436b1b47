// Package web is Herald's HTTP layer: the admin JSON API under /api/v1, the
// public API under /public/v1 for opt-in pages and app SDKs, the hosted pages
// (opt-in, confirm, unsubscribe, preferences), health, readiness and metrics.
// It is the only package that maps errors to status codes.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"strings"
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
	"github.com/herald-im/herald/migrations"
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
	pages    *template.Template
	ipLimit  *limiter
	subLimit *limiter
	// proofLimit counts failed identity proofs per client address.
	proofLimit *limiter
	httpCount  *prometheus.CounterVec
	httpTime   *prometheus.HistogramVec
}

// New builds the fiber app with every route.
func New(d Deps) *fiber.App {
	s := &Server{
		Deps:     d,
		pages:    template.Must(template.ParseFS(templateFS, "templates/*.html")),
		ipLimit:  newLimiter(d.Config.RateLimitPerIP, time.Minute),
		subLimit: newLimiter(d.Config.RateLimitPerSubscriber, time.Minute),
		// As many failed proofs per address as requests per subscriber: a
		// person mistyping is far below it, guessing far above.
		proofLimit: newLimiter(d.Config.RateLimitPerSubscriber, time.Minute),
	}
	s.registerMetrics()
	app := fiber.New(fiber.Config{
		AppName:               "herald",
		DisableStartupMessage: true,
		// Streaming, so that the CSV import is never held in memory; every
		// body is bounded by its route's limit in readBody (body.go), which
		// explains why fasthttp's own limit cannot do it. BodyLimit stays at
		// the largest body a route takes: with streaming, fasthttp uses it
		// only to choose how to pre-read the first 8 KiB.
		BodyLimit:         d.Config.MaxImportBytes,
		StreamRequestBody: true,
		// Herald takes no multipart bodies; fasthttp would otherwise parse
		// one, into memory and temporary files, before any handler runs.
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               16 << 10, // room for long push endpoints and tokens in URLs
		ReadTimeout:                  2 * time.Minute,
		WriteTimeout:                 2 * time.Minute,
		IdleTimeout:                  2 * time.Minute,
		ErrorHandler:                 s.handleError,
		ProxyHeader:                  proxyHeader(d.Config.TrustProxy),
		// fiber's strings otherwise alias pooled request buffers, and what
		// outlives a request (Prometheus label values, first of all) would be
		// rewritten underneath by a later one.
		Immutable: true,
	})
	app.Use(s.recoverPanics, s.observe)
	if strings.HasPrefix(d.Config.PublicURL, "https://") {
		app.Use(strictTransport)
	}
	// Bodies are bounded, and text checked, before anything else reads
	// them (body.go, edge.go).
	app.Use(s.readBody, checkText)

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metricsAccess, s.metrics)
	app.Get("/", s.home)

	// checkParams, first in each route with parameters, refuses any that
	// is not text (edge.go).
	api := app.Group("/api/v1", s.authenticate)
	adminOrMarketer := s.allow(apikeys.RoleAdmin, apikeys.RoleMarketer)
	anyRole := s.allow(apikeys.RoleAdmin, apikeys.RoleMarketer, apikeys.RoleAgent)
	admin := s.allow(apikeys.RoleAdmin)

	api.Get("/lists", adminOrMarketer, s.listLists)
	api.Post("/lists", adminOrMarketer, s.createList)
	api.Get("/lists/:slug", checkParams, adminOrMarketer, s.getList)
	api.Patch("/lists/:slug", checkParams, adminOrMarketer, s.updateList)
	api.Delete("/lists/:slug", checkParams, adminOrMarketer, s.deleteList)
	api.Put("/lists/:slug/subscribers/:id", checkParams, adminOrMarketer, s.setMembership)

	api.Get("/subscribers", anyRole, s.listSubscribers)
	api.Post("/subscribers", adminOrMarketer, s.createSubscriber)
	api.Get("/subscribers/:id", checkParams, anyRole, s.getSubscriber)
	api.Patch("/subscribers/:id", checkParams, adminOrMarketer, s.updateSubscriber)
	api.Delete("/subscribers/:id", checkParams, admin, s.eraseSubscriber)
	api.Post("/subscribers/:id/erase", checkParams, admin, s.eraseSubscriber)
	api.Get("/subscribers/:id/export", checkParams, admin, s.exportSubscriber)
	api.Put("/subscribers/:id/devices/:device", checkParams, admin, s.markTestDevice)

	api.Post("/campaigns", adminOrMarketer, s.createCampaign)
	api.Get("/campaigns", adminOrMarketer, s.listCampaigns)
	api.Get("/campaigns/:id", checkParams, adminOrMarketer, s.getCampaign)
	api.Patch("/campaigns/:id", checkParams, adminOrMarketer, s.updateCampaign)
	api.Get("/campaigns/:id/preview", checkParams, adminOrMarketer, s.previewCampaign)
	api.Get("/campaigns/:id/stats", checkParams, adminOrMarketer, s.campaignStats)
	api.Get("/campaigns/:id/deliveries", checkParams, adminOrMarketer, s.campaignDeliveries)
	api.Post("/campaigns/:id/:action", checkParams, adminOrMarketer, s.campaignAction)

	api.Post("/imports", adminOrMarketer, s.createImport)
	api.Get("/imports/:id", checkParams, adminOrMarketer, s.getImport)

	api.Post("/apps", admin, s.createApp)
	api.Get("/apps/:slug", checkParams, admin, s.getApp)
	api.Put("/apps/:slug/credentials/:platform", checkParams, admin, s.setCredentials)
	api.Delete("/apps/:slug/credentials/:platform", checkParams, admin, s.deleteCredentials)
	api.Post("/api-keys", admin, s.createAPIKey)
	api.Get("/api-keys", admin, s.listAPIKeys)
	api.Delete("/api-keys/:id", checkParams, admin, s.revokeAPIKey)

	// Only the public API's routes and the pages spend the per-address
	// budget: each route has limitByIP (or a variant) of its own, so static
	// files and unknown paths spend nothing.
	pub := app.Group("/public/v1", s.publicHeaders)
	pub.Get("/apps/:app", s.limitByIP, checkParams, s.publicApp)
	pub.Post("/subscribe", s.limitByIP, s.subscribe)
	pub.Post("/preferences", s.limitByIP, s.publicPreferences)
	pub.Post("/unsubscribe", s.limitByIPDeferred, s.publicUnsubscribe)
	pub.Post("/campaign-actions", s.limitByIP, s.campaignActionTap)

	page := []fiber.Handler{s.limitByIP, s.pageHeaders, checkParams}
	// Unsubscribe links and the preference page work past the address's
	// budget for whoever holds a link that verifies (limitByIPUnlessOwner).
	unsubscribeLink := []fiber.Handler{s.limitByIPUnlessOwner(s.holdsUnsubscribeLink), s.pageHeaders, checkParams}
	preferencesLink := []fiber.Handler{s.limitByIPUnlessOwner(s.holdsPreferencesLink), s.pageHeaders, checkParams}
	app.Get("/l/:list", append(page, s.optInPage)...)
	app.Get("/c/:token", append(page, s.click)...)
	app.Get("/confirm/:token", append(page, s.confirmPage)...)
	app.Post("/confirm/:token", append(page, s.confirmSubmit)...)
	app.Get("/u/:token", append(unsubscribeLink, s.unsubscribePage)...)
	app.Post("/u/:token", append(unsubscribeLink, s.unsubscribeSubmit)...)
	app.Get("/preferences/:token", append(preferencesLink, s.preferencesPage)...)
	app.Post("/preferences/:token", append(preferencesLink, s.preferencesSubmit)...)
	app.Get("/sw.js", s.static("static/sw.js", "text/javascript"))
	app.Get("/embed.js", s.cors, s.static("static/embed.js", "text/javascript"))
	app.Get("/static/style.css", s.static("static/style.css", "text/css"))

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return app
}

// holdsUnsubscribeLink reports whether the request's path holds an
// unsubscribe link Herald signed, expired or not (it always unsubscribes),
// by its signature alone: no database work before the rate limit.
func (s *Server) holdsUnsubscribeLink(c *fiber.Ctx) bool {
	return s.OptIn.AuthenticUnsubscribe(c.Params("token"))
}

// holdsPreferencesLink reports whether the request's path holds a
// preference-page link Herald signed; an expired one still leaves every
// list, so it is not limited either.
func (s *Server) holdsPreferencesLink(c *fiber.Ctx) bool {
	_, err := s.OptIn.PreferencesSubscriber(c.Params("token"))
	return err == nil || errors.Is(err, optin.ErrTokenExpired)
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
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		return c.Send(body)
	}
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		// The error can name the database's host and user: it goes to the
		// log, and the answer says only which part is not ready.
		s.Logger.Warn("not ready", "error", err)
		reason := "database unreachable"
		if errors.Is(err, migrations.ErrPending) {
			reason = "migrations pending"
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "reason": reason})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (s *Server) home(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{
		"name": "herald", "api": "/api/v1", "public_api": "/public/v1",
		"docs": "docs/api.md in the Herald repository",
	})
}
