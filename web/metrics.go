package web

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) registerMetrics() {
	s.httpCount = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"method", "route", "status"})
	s.httpTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "herald_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route"})
	s.Registry.MustRegister(s.httpCount, s.httpTime)
}

func (s *Server) metrics(c *fiber.Ctx) error {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))(c)
}

// metricsAccess guards /metrics on the main listener, which may face the
// internet: metrics name routes and count requests and outcomes, nothing an
// outsider needs. With HERALD_METRICS_TOKEN it asks for that bearer token;
// else, with HERALD_METRICS_LISTEN, metrics are served there and not here;
// else only callers on the loopback interface get them, and not through a
// proxy on the same host (a request that says it was forwarded).
func (s *Server) metricsAccess(c *fiber.Ctx) error {
	switch {
	case s.Config.MetricsToken != "":
		token, ok := bearerToken(c)
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.Config.MetricsToken)) != 1 {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="herald-metrics"`)
			return problem(c, fiber.StatusUnauthorized, "Unauthorized", "send Authorization: Bearer <HERALD_METRICS_TOKEN>")
		}
	case s.Config.MetricsListen != "":
		return fiber.ErrNotFound
	case !loopbackCaller(c):
		return problem(c, fiber.StatusForbidden, "Forbidden",
			"metrics answer only loopback callers; set HERALD_METRICS_TOKEN or HERALD_METRICS_LISTEN to scrape from elsewhere")
	}
	return c.Next()
}

// loopbackCaller reports whether the connection comes from this host and
// the request does not say a proxy forwarded it.
func loopbackCaller(c *fiber.Ctx) bool {
	h := &c.Request().Header
	for _, name := range []string{fiber.HeaderXForwardedFor, fiber.HeaderForwarded, "X-Real-Ip"} {
		if len(h.Peek(name)) > 0 {
			return false
		}
	}
	a, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	return ok && a.Unmap().IsLoopback()
}

// NewMetrics is the app for HERALD_METRICS_LISTEN: /metrics from registry
// and nothing else, for a scraper on a private network.
func NewMetrics(registry *prometheus.Registry, logger *slog.Logger) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName: "herald-metrics", DisableStartupMessage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			var fe *fiber.Error
			if errors.As(err, &fe) {
				return problem(c, fe.Code, httpTitle(fe.Code), fe.Message)
			}
			logger.Error("metrics request failed", "path", c.Path(), "error", err)
			return problem(c, fiber.StatusInternalServerError, "Internal error", "the error was logged")
		},
	})
	handler := adaptor.HTTPHandler(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	app.Get("/metrics", handler)
	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return app
}
