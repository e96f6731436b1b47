// Package web is Herald's HTTP layer: the admin JSON API under /api/v1, the
// public API under /public/v1 for opt-in pages and app SDKs, the hosted pages
// (opt-in, confirm, unsubscribe, preferences), health, readiness and metrics.
// It is the only package that maps errors to status codes.
package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"slices"
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
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/live"
	"github.com/herald-im/herald/migrations"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/webhooks"
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
	// Senders sends an admin's test push (nil: the route answers 503).
	Senders *apps.Senders
	// Subscribers makes the changes staff ask for to lists, subscribers
	// and imports.
	Subscribers *subscribers.Service
	// Users signs people in and manages their accounts and teams.
	Users *users.Service
	// Conversations runs the inbox, replies and the subscribers' side of
	// conversations.
	Conversations *conversations.Service
	// Hub carries committed events to the event streams.
	Hub *live.Hub
	// Webhooks manages outbound webhook endpoints.
	Webhooks *webhooks.Service
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Ready reports whether the process can serve (database reachable,
	// migrations current).
	Ready func(context.Context) error
	// Background lives as long as the server: the River UI's background
	// queries stop with it. Nil: they run until the process ends.
	Background context.Context
}

// Server holds the handlers' dependencies.
type Server struct {
	Deps
	pages    *template.Template
	ipLimit  *limiter
	subLimit *limiter
	// proofLimit counts failed identity proofs per client address.
	proofLimit *limiter
	// typingLimit keeps one typing signal per subscriber every few seconds.
	typingLimit *limiter
	// subscriberSlots bounds the subscribers' conversation calls that use
	// the database at once (see admitSubscriber).
	subscriberSlots chan struct{}
	// keys issues and revokes API keys.
	keys      *apikeys.Service
	riverUI   *riverUI
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
		// As many failed proofs per address as requests per subscriber: a
		// person mistyping is far below it, guessing far above.
		proofLimit:  newLimiter(d.Config.RateLimitPerSubscriber, time.Minute),
		keys:        apikeys.NewService(d.Pool),
		typingLimit: newLimiter(1, 3*time.Second),
		// An eighth of the pool: a flood of subscriber messages queues here
		// instead of taking every connection, and the database's time, from
		// agents, pushes and River.
		subscriberSlots: make(chan struct{}, max(4, int(d.Pool.Config().MaxConns)/8)),
	}
	s.registerMetrics()
	ui, err := s.newRiverUI()
	if err != nil {
		// The UI's embedded files are part of the binary: this is a
		// broken build, not a condition to run on with.
		panic(err)
	}
	s.riverUI = ui
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
	app.Use(s.recoverPanics, s.observe, securityHeaders)
	if strings.HasPrefix(d.Config.PublicURL, "https://") {
		app.Use(strictTransport)
	}
	// Bodies are bounded, and text checked, before anything else reads
	// them (body.go, edge.go).
	app.Use(s.readBody, checkText)

	s.routes(&router{s: s, app: app, policies: map[string]Policy{}})
	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return app
}

// routes is every route of the server with the policy that says who may
// call it: the one place to read who can do what. checkParams, first in
// each route with parameters, refuses any that is not text (edge.go).
func (s *Server) routes(r *router) {
	defer func() {
		policiesMu.Lock()
		policiesOf[r.app] = r.policies
		policiesMu.Unlock()
	}()
	const get, post, put, patch, del = fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete

	r.add(get, "/healthz", public, func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	r.add(get, "/readyz", public, s.readyz)
	r.add(get, "/metrics", metricsOnly, s.metrics)
	r.add(get, "/", public, s.home)

	// The admin API: API keys and signed-in users alike. Its description
	// is public: it holds no secret (openapi.go).
	r.add(get, "/api/v1/openapi.json", public, openAPI("/api/v1/openapi.json"))
	r.add(get, "/api/v1/session", anyStaff, s.getSession)

	r.add(get, "/api/v1/lists", adminOrMarketer, s.listLists)
	r.add(post, "/api/v1/lists", adminOrMarketer, s.createList)
	r.add(get, "/api/v1/lists/:slug", adminOrMarketer, checkParams, s.getList)
	r.add(patch, "/api/v1/lists/:slug", adminOrMarketer, checkParams, s.updateList)
	r.add(del, "/api/v1/lists/:slug", adminOrMarketer, checkParams, s.deleteList)
	r.add(put, "/api/v1/lists/:slug/subscribers/:id", adminOrMarketer, checkParams, s.setMembership)
	r.add(put, "/api/v1/lists/:slug/logo", adminOrMarketer, checkParams, s.setListLogo)
	r.add(del, "/api/v1/lists/:slug/logo", adminOrMarketer, checkParams, s.deleteListLogo)

	r.add(get, "/api/v1/subscribers", anyStaff, s.listSubscribers)
	r.add(post, "/api/v1/subscribers", adminOrMarketer, s.createSubscriber)
	r.add(get, "/api/v1/subscribers/:id", anyStaff, checkParams, s.getSubscriber)
	r.add(patch, "/api/v1/subscribers/:id", adminOrMarketer, checkParams, s.updateSubscriber)
	r.add(del, "/api/v1/subscribers/:id", adminOnly, checkParams, s.eraseSubscriber)
	r.add(post, "/api/v1/subscribers/:id/erase", adminOnly, checkParams, s.eraseSubscriber)
	r.add(get, "/api/v1/subscribers/:id/consent", adminOrMarketer, checkParams, s.subscriberConsent)
	r.add(get, "/api/v1/subscribers/:id/export", adminOnly, checkParams, s.exportSubscriber)
	r.add(get, "/api/v1/subscribers/:id/conversations", adminOrAgent, checkParams, s.subscriberConversations)
	r.add(put, "/api/v1/subscribers/:id/devices/:device", adminOnly, checkParams, s.markTestDevice)

	r.add(post, "/api/v1/campaigns", adminOrMarketer, s.createCampaign)
	r.add(get, "/api/v1/campaigns", adminOrMarketer, s.listCampaigns)
	r.add(get, "/api/v1/campaigns/:id", adminOrMarketer, checkParams, s.getCampaign)
	r.add(patch, "/api/v1/campaigns/:id", adminOrMarketer, checkParams, s.updateCampaign)
	r.add(get, "/api/v1/campaigns/:id/preview", adminOrMarketer, checkParams, s.previewCampaign)
	r.add(post, "/api/v1/audience-preview", adminOrMarketer, s.previewAudience)
	r.add(get, "/api/v1/campaigns/:id/stats", adminOrMarketer, checkParams, s.campaignStats)
	r.add(get, "/api/v1/campaigns/:id/timeline", adminOrMarketer, checkParams, s.campaignTimeline)
	r.add(get, "/api/v1/campaigns/:id/deliveries", adminOrMarketer, checkParams, s.campaignDeliveries)
	r.add(post, "/api/v1/campaigns/:id/:action", adminOrMarketer, checkParams, s.campaignAction)

	r.add(post, "/api/v1/imports", adminOrMarketer, s.createImport)
	r.add(get, "/api/v1/imports/:id", adminOrMarketer, checkParams, s.getImport)

	r.add(get, "/api/v1/apps", adminOnly, s.listApps)
	r.add(post, "/api/v1/apps", adminOnly, s.createApp)
	r.add(get, "/api/v1/apps/:slug", adminOnly, checkParams, s.getApp)
	r.add(put, "/api/v1/apps/:slug/credentials/:platform", adminOnly, checkParams, s.setCredentials)
	r.add(del, "/api/v1/apps/:slug/credentials/:platform", adminOnly, checkParams, s.deleteCredentials)
	r.add(post, "/api/v1/api-keys", adminOnly, s.createAPIKey)
	r.add(get, "/api/v1/api-keys", adminOnly, s.listAPIKeys)
	r.add(del, "/api/v1/api-keys/:id", adminOnly, checkParams, s.revokeAPIKey)

	r.add(get, "/api/v1/users", adminOnly, s.listUsers)
	r.add(get, "/api/v1/users/:id", adminOnly, checkParams, s.getUser)
	r.add(patch, "/api/v1/users/:id", adminOnly, checkParams, s.updateUser)
	r.add(post, "/api/v1/users/:id/disable", adminOnly, checkParams, s.disableUser)
	r.add(post, "/api/v1/users/:id/enable", adminOnly, checkParams, s.enableUser)
	r.add(post, "/api/v1/users/:id/reset-access", adminOnly, checkParams, s.resetUserAccess)
	r.add(post, "/api/v1/users/:id/sign-out-everywhere", adminOnly, checkParams, s.signOutUserEverywhere)
	r.add(get, "/api/v1/invitations", adminOnly, s.listInvitations)
	r.add(post, "/api/v1/invitations", adminOnly, s.createInvitation)
	r.add(del, "/api/v1/invitations/:id", adminOnly, checkParams, s.revokeInvitation)
	// Agents see the teams the inbox routes conversations to.
	r.add(get, "/api/v1/teams", anyStaff, s.listTeams)
	r.add(post, "/api/v1/teams", adminOnly, s.createTeam)
	r.add(get, "/api/v1/teams/:id", anyStaff, checkParams, s.getTeam)
	r.add(patch, "/api/v1/teams/:id", adminOnly, checkParams, s.updateTeam)
	r.add(del, "/api/v1/teams/:id", adminOnly, checkParams, s.deleteTeam)
	r.add(put, "/api/v1/teams/:id/members/:user", adminOnly, checkParams, s.addTeamMember)
	r.add(del, "/api/v1/teams/:id/members/:user", adminOnly, checkParams, s.removeTeamMember)
	r.add(get, "/api/v1/audit-log", adminOnly, s.listAudit)
	r.add(get, "/api/v1/settings/security", adminOnly, s.getSecuritySettings)
	r.add(put, "/api/v1/settings/security", adminOnly, s.putSecuritySettings)

	// Conversations: admins and agents (API keys of those roles are bots
	// and backend systems); marketers do not read them.
	r.add(get, "/api/v1/conversations", adminOrAgent, s.listConversations)
	r.add(get, "/api/v1/conversations/counts", adminOrAgent, s.conversationCounts)
	r.add(get, "/api/v1/conversations/search", adminOrAgent, s.searchMessages)
	r.add(get, "/api/v1/conversations/:id", adminOrAgent, checkParams, s.getConversation)
	r.add(get, "/api/v1/conversations/:id/messages", adminOrAgent, checkParams, s.conversationMessages)
	r.add(post, "/api/v1/conversations/:id/messages", adminOrAgent, checkParams, s.replyToConversation)
	r.add(post, "/api/v1/conversations/:id/pick-up", adminOrAgent, checkParams, s.pickUpConversation)
	r.add(post, "/api/v1/conversations/:id/assign", adminOrAgent, checkParams, s.assignConversation)
	r.add(put, "/api/v1/conversations/:id/labels", adminOrAgent, checkParams, s.setConversationLabels)
	r.add(post, "/api/v1/conversations/:id/:action", adminOrAgent, checkParams, s.conversationState)
	r.add(get, "/api/v1/attachments/:id", adminOrAgent, checkParams, s.staffAttachment)
	r.add(get, "/api/v1/canned-responses", adminOrAgent, s.listCanned)
	r.add(post, "/api/v1/canned-responses", adminOrAgent, s.createCanned)
	r.add(patch, "/api/v1/canned-responses/:id", adminOrAgent, checkParams, s.updateCanned)
	r.add(del, "/api/v1/canned-responses/:id", adminOrAgent, checkParams, s.deleteCanned)
	r.add(get, "/api/v1/agents", adminOrAgent, s.listAgents)
	r.add(put, "/api/v1/agents/me", adminOrAgent, s.setMyAvailability)
	r.add(put, "/api/v1/teams/:id/auto-assign", adminOnly, checkParams, s.setTeamAutoAssign)
	r.add(patch, "/api/v1/apps/:slug", adminOnly, checkParams, s.updateApp)
	r.add(put, "/api/v1/apps/:slug/logo", adminOnly, checkParams, s.setAppLogo)
	r.add(del, "/api/v1/apps/:slug/logo", adminOnly, checkParams, s.deleteAppLogo)
	r.add(put, "/api/v1/apps/:slug/inbox", adminOnly, checkParams, s.setAppInbox)
	r.add(post, "/api/v1/apps/:slug/test-push", adminOnly, checkParams, s.testPush)

	// River's own UI, for admins: their session, with its CSRF token added
	// to the UI's writes by a script of ours (riverui.go).
	if ui := s.riverUI; ui != nil {
		r.add(get, riverUIPrefix+"-csrf.js", adminOnly, ui.shim)
		r.add(get, riverUIPrefix+"/*", adminOnly, ui.handle)
		for _, m := range []string{post, put, patch, del} {
			r.add(m, riverUIPrefix+"/*", adminOnly, ui.handle)
		}
	}
	r.add(get, "/api/v1/lists/:slug/keywords", adminOrMarketer, checkParams, s.getListKeywords)
	r.add(put, "/api/v1/lists/:slug/keywords", adminOrMarketer, checkParams, s.setListKeywords)
	r.add(post, "/api/v1/messages", adminOrAgent, s.sendTransactional)
	r.add(get, "/api/v1/messages/:id", adminOrAgent, checkParams, s.getMessage)
	r.add(get, "/api/v1/events", anyStaff, s.staffEvents)
	r.add(get, "/api/v1/webhooks", adminOnly, s.listWebhooks)
	r.add(post, "/api/v1/webhooks", adminOnly, s.createWebhook)
	r.add(get, "/api/v1/webhooks/:id", adminOnly, checkParams, s.getWebhook)
	r.add(patch, "/api/v1/webhooks/:id", adminOnly, checkParams, s.updateWebhook)
	r.add(del, "/api/v1/webhooks/:id", adminOnly, checkParams, s.deleteWebhook)
	r.add(post, "/api/v1/webhooks/:id/rotate-secret", adminOnly, checkParams, s.rotateWebhookSecret)
	r.add(get, "/api/v1/webhooks/:id/deliveries", adminOnly, checkParams, s.webhookDeliveries)
	r.add(post, "/api/v1/webhooks/:id/deliveries/:delivery/redeliver", adminOnly, checkParams, s.redeliverWebhook)

	// The public API. Only its routes and the pages spend the per-address
	// budget: each route has limitByIP (or a variant) of its own, so static
	// files and unknown paths spend nothing.
	pub := []fiber.Handler{s.publicHeaders}
	r.add(get, "/public/v1/openapi.json", public, openAPI("/public/v1/openapi.json"))
	r.add(get, "/public/v1/apps/:app", public, append(pub, s.limitByIP, checkParams, s.publicApp)...)
	r.add(post, "/public/v1/subscribe", public, append(pub, s.limitByIP, s.subscribe)...)
	r.add(post, "/public/v1/preferences", public, append(pub, s.limitByIP, s.publicPreferences)...)
	r.add(post, "/public/v1/unsubscribe", public, append(pub, s.limitByIPDeferred, s.publicUnsubscribe)...)
	r.add(post, "/public/v1/campaign-actions", public, append(pub, s.limitByIP, s.campaignActionTap)...)
	r.add(post, "/public/v1/receipts", public, append(pub, s.limitByIP, s.receipt)...)
	r.add(post, "/public/v1/message-actions", public, append(pub, s.limitByIP, s.messageButtonTap)...)
	r.add(get, "/public/v1/attachments/:token", public, s.limitByIP, checkParams, s.attachmentBytes)
	// A subscriber's conversation: one proof for a token, then the token.
	// Clipped: each route's append must copy, not share, the prefix.
	conv := slices.Clip(append(slices.Clip(pub), s.limitByIP, s.subscriberToken(false), s.admitSubscriber))
	r.add(post, "/public/v1/conversation/session", public, append(pub, s.limitByIP, s.conversationSession)...)
	r.add(post, "/public/v1/conversation/messages", public, append(conv, s.subscriberSend)...)
	r.add(get, "/public/v1/conversation/messages", public, append(conv, s.subscriberHistory)...)
	r.add(post, "/public/v1/conversation/read", public, append(conv, s.subscriberRead)...)
	r.add(post, "/public/v1/conversation/typing", public, append(conv, s.subscriberTyping)...)
	r.add(post, "/public/v1/conversation/attachments", public, append(conv, s.subscriberUpload)...)
	r.add(get, "/public/v1/conversation/attachments/:id", public, append(conv, checkParams, s.subscriberAttachment)...)
	r.add(get, "/public/v1/conversation/broadcasts", public, append(conv, s.subscriberBroadcasts)...)
	r.add(get, "/public/v1/conversation/events", public, append(pub, s.limitByIP, s.subscriberToken(true), s.subscriberEvents)...)
	for _, path := range []string{"/public/v1/apps/:app", "/public/v1/subscribe", "/public/v1/preferences",
		"/public/v1/unsubscribe", "/public/v1/campaign-actions", "/public/v1/receipts", "/public/v1/message-actions",
		"/public/v1/conversation/session", "/public/v1/conversation/messages", "/public/v1/conversation/read",
		"/public/v1/conversation/typing", "/public/v1/conversation/attachments", "/public/v1/conversation/attachments/:id",
		"/public/v1/conversation/broadcasts", "/public/v1/conversation/events"} {
		r.add(fiber.MethodOptions, path, public, s.publicHeaders) // CORS preflight
	}

	// Subscribers' pages.
	page := []fiber.Handler{s.limitByIP, s.pageHeaders, checkParams}
	// Unsubscribe links and the preference page work past the address's
	// budget for whoever holds a link that verifies (limitByIPUnlessOwner).
	unsubscribeLink := []fiber.Handler{s.limitByIPUnlessOwner(s.holdsUnsubscribeLink), s.pageHeaders, checkParams}
	preferencesLink := []fiber.Handler{s.limitByIPUnlessOwner(s.holdsPreferencesLink), s.pageHeaders, checkParams}
	r.add(get, "/l/:list", public, append(page, s.optInPage)...)
	// Who sends: an app's logo and colours on these pages. Cached by the
	// browser (a changed logo or colour is a new URL), so a visitor spends
	// their budget on them about once.
	r.add(get, "/brand/:app/logo", public, s.limitByIP, checkParams, s.brandLogo)
	r.add(get, "/brand/lists/:list/logo", public, s.limitByIP, checkParams, s.listLogo)
	r.add(get, "/brand/:app/theme.css", public, s.limitByIP, checkParams, s.brandTheme)
	r.add(get, "/c/:token", public, append(page, s.click)...)
	r.add(get, "/confirm/:token", public, append(page, s.confirmPage)...)
	r.add(post, "/confirm/:token", public, append(page, s.confirmSubmit)...)
	r.add(get, "/u/:token", public, append(unsubscribeLink, s.unsubscribePage)...)
	r.add(post, "/u/:token", public, append(unsubscribeLink, s.unsubscribeSubmit)...)
	r.add(get, "/preferences/:token", public, append(preferencesLink, s.preferencesPage)...)
	r.add(post, "/preferences/:token", public, append(preferencesLink, s.preferencesSubmit)...)

	// Staff's pages: signing in and their own account. The console will
	// extend them.
	r.add(get, "/sign-in", public, s.limitByIP, s.pageHeaders, s.signInPage)
	r.add(post, "/sign-in", public, s.limitByIP, s.pageHeaders, s.signInSubmit)
	r.add(get, "/sign-in/code", signingIn, s.codePage)
	r.add(post, "/sign-in/code", signingIn, s.codeSubmit)
	r.add(get, "/access/:token", public, s.limitByIP, s.pageHeaders, checkParams, s.accessPage)
	r.add(post, "/access/:token", public, s.limitByIP, s.pageHeaders, checkParams, s.accessSubmit)
	r.add(get, "/account", accountPage, s.accountPage)
	r.add(get, "/account/password", accountPage, s.passwordPage)
	r.add(post, "/account/password", accountPage, s.passwordSubmit)
	r.add(get, "/account/totp", signingIn, s.totpPage)
	r.add(post, "/account/totp", signingIn, s.totpSubmit)
	r.add(post, "/account/totp/disable", accountPage, s.totpDisable)
	r.add(post, "/account/recovery-codes", accountPage, s.recoveryCodesSubmit)
	r.add(post, "/sign-out", signingIn, s.signOut)
	r.add(post, "/sign-out-everywhere", accountPage, s.signOutEverywhere)

	r.add(get, "/sw.js", public, s.static("static/sw.js", "text/javascript"))
	// The embeddable script is loaded by the company's own site: the one
	// answer other origins may read (cors) and embed (crossOriginResource).
	r.add(get, "/embed.js", public, s.cors, s.crossOriginResource, s.static("static/embed.js", "text/javascript"))
	r.add(get, "/widget.js", public, s.cors, s.crossOriginResource, s.static("static/widget.js", "text/javascript"))
	r.add(get, "/static/style.css", public, s.static("static/style.css", "text/css"))
	r.add(get, "/static/console.css", public, s.static("static/console.css", "text/css"))

	// The console: one page for staff, the app on the API (console.go).
	r.add(get, "/console", anyStaff, s.consolePage)
	s.consoleFiles(r)
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
	// Compressed once, here: the widget and the console's scripts are a
	// third of their size on the wire, at no cost per request.
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := w.Write(body); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	zipped := gz.Bytes()
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, contentType+"; charset=utf-8")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Vary(fiber.HeaderAcceptEncoding)
		if len(zipped) < len(body) && acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
			c.Set(fiber.HeaderContentEncoding, "gzip")
			return c.Send(zipped)
		}
		return c.Send(body)
	}
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip (and
// does not refuse it with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
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
