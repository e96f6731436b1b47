package web

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

const localsKey = "herald_api_key"

// bearerToken is the token of an Authorization: Bearer header. The scheme
// is case-insensitive (RFC 9110, section 11.1), so "bearer" and "BEARER"
// are Bearer too.
func bearerToken(c *fiber.Ctx) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(c.Get(fiber.HeaderAuthorization)), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// limitByIP spends one of the caller's address's requests per minute
// (HERALD_RATE_LIMIT_IP). Only the public API and the pages are limited
// this way: it is a route's own middleware, so static files, health checks
// and unknown paths spend nothing.
func (s *Server) limitByIP(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodOptions {
		return c.Next()
	}
	if ok, wait := s.ipLimit.allow(ipKey(c)); !ok {
		return tooMany(wait, "too many requests from this address")
	}
	return c.Next()
}

// limitByIPUnlessOwner is limitByIP for the links that unsubscribe: a
// caller over its address's budget still gets through when owns reports
// that the request proves whose it is (a signed link that verifies),
// because leaving must never be rate limited into failure for the person
// who leaves, even when others share their address. Otherwise it is a 429
// as usual.
func (s *Server) limitByIPUnlessOwner(owns func(c *fiber.Ctx) bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ok, wait := s.ipLimit.allow(ipKey(c))
		if ok || owns(c) {
			return c.Next()
		}
		return tooMany(wait, "too many requests from this address")
	}
}

// limitByIPDeferred is limitByIP for POST /public/v1/unsubscribe, whose
// proof is in the body: a caller over its address's budget is let through
// to the handler, which answers 429 unless the proof verifies (overIPBudget).
func (s *Server) limitByIPDeferred(c *fiber.Ctx) error {
	if ok, wait := s.ipLimit.allow(ipKey(c)); !ok {
		c.Locals(overBudgetKey, wait)
	}
	return c.Next()
}

const overBudgetKey = "herald_over_ip_budget"

// overIPBudget reports whether limitByIPDeferred found the caller over its
// address's budget, and for how long.
func overIPBudget(c *fiber.Ctx) (time.Duration, bool) {
	wait, over := c.Locals(overBudgetKey).(time.Duration)
	return wait, over
}

func ipKey(c *fiber.Ctx) string { return "ip:" + budgetPrefix(clientIP(c)).String() }

// budgetPrefix is what shares one per-address budget: an IPv4 address, or
// an IPv6 /64, which one subscriber line usually gets whole (counting each
// of its addresses apart would give one person 2^64 budgets).
func budgetPrefix(a netip.Addr) netip.Prefix {
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p
		}
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// tooMany is a 429, with the Retry-After that says when the budget is
// back (handleError writes it).
func tooMany(wait time.Duration, detail string) error {
	return &rateLimited{wait: wait, detail: detail}
}

type rateLimited struct {
	wait   time.Duration
	detail string
}

func (e *rateLimited) Error() string { return "rate limited: " + e.detail }

// retryAfter is the Retry-After header's value: whole seconds, rounded up.
func (e *rateLimited) retryAfter() string { return strconv.Itoa(int(e.wait/time.Second) + 1) }

// publicHeaders are the public API's: CORS, and no caching, since answers
// carry subscriber tokens and signed preference links.
func (s *Server) publicHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.cors(c)
}

// cors lets a company's own site call the public API and load embed.js.
func (s *Server) cors(c *fiber.Ctx) error {
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	c.Set(fiber.HeaderAccessControlAllowMethods, "GET, POST, OPTIONS")
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type, Authorization, Last-Event-ID")
	c.Set(fiber.HeaderAccessControlMaxAge, "600")
	if c.Method() == fiber.MethodOptions {
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.Next()
}

// pageCSP is the pages' Content-Security-Policy: Herald's own scripts,
// styles and images only (no inline script), and no framing.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// apiCSP is every other answer's: a JSON or script answer opened as a
// document runs nothing, loads nothing and is framed nowhere.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders are on every answer: no sniffing a type, no referrer
// leaking token-bearing URLs, no framing (clickjacking), and no reading
// by another origin's page through a no-cors load. Pages widen the CSP to
// what they load (pageHeaders); embed.js is the one answer other sites may
// load (crossOriginResource).
func securityHeaders(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set(fiber.HeaderContentSecurityPolicy, apiCSP)
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	return c.Next()
}

// crossOriginResource lets other sites load the answer with a plain
// <script src>: the embeddable opt-in script.
func (s *Server) crossOriginResource(c *fiber.Ctx) error {
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	return c.Next()
}

// pageHeaders keeps pages from leaking their token-bearing URLs and from
// running anything but our own scripts. The referrer goes to Herald only
// (same-origin, not no-referrer): with no-referrer a browser sends
// "Origin: null" on the pages' own form posts, and the origin check
// (sameOrigin) could no longer tell them from a forged one.
func (s *Server) pageHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, pageCSP)
	c.Set(fiber.HeaderReferrerPolicy, "same-origin")
	return c.Next()
}

// strictTransport tells browsers to use https only (HSTS) when Herald is
// served over https (HERALD_PUBLIC_URL). Browsers ignore the header on
// plain http, which is what Herald sees behind a proxy that ends TLS, so it
// is sent on every answer. Subdomains are not included: they may be
// another service's.
func strictTransport(c *fiber.Ctx) error {
	c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
	return c.Next()
}

func (s *Server) recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.Logger.Error("panic in handler", "path", c.Path(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = problem(c, fiber.StatusInternalServerError, "Internal error", "the error was logged")
		}
	}()
	return c.Next()
}

// clientIP is the caller's address for consent records and rate limits:
// the proxy's X-Forwarded-For when HERALD_TRUST_PROXY is set and present,
// else the connection's.
func clientIP(c *fiber.Ctx) netip.Addr {
	// The last entry is the one Herald's own proxy added, on the last header
	// line when a proxy adds a line rather than appending (HAProxy's
	// forwardfor); anything before it came from the client and can say
	// anything.
	forwarded := c.IP()
	if lines := c.Request().Header.PeekAll(fiber.HeaderXForwardedFor); len(lines) > 1 && c.App().Config().ProxyHeader != "" {
		forwarded = string(lines[len(lines)-1])
	}
	hops := strings.Split(forwarded, ",")
	ip := strings.TrimSpace(hops[len(hops)-1])
	a, err := netip.ParseAddr(ip)
	if err != nil {
		a, _ = netip.AddrFromSlice(c.Context().RemoteIP())
	}
	return a.Unmap()
}

func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.handleError(c, err); herr != nil {
			s.Logger.Error("writing error response", "error", herr)
		}
	}
	route := c.Route().Path
	status := strconv.Itoa(c.Response().StatusCode())
	s.httpCount.WithLabelValues(c.Method(), route, status).Inc()
	s.httpTime.WithLabelValues(c.Method(), route).Observe(time.Since(start).Seconds())
	s.Logger.Debug("request", "method", c.Method(), "route", route, "status", status, "duration_ms", time.Since(start).Milliseconds())
	return nil
}
