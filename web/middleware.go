package web

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apikeys"
)

const localsKey = "herald_api_key"

// authenticate requires a valid API key on the admin API. Its answers are
// never stored by caches: they carry API keys, identity secrets and personal
// data, and a 401 must not be served from a cache either.
func (s *Server) authenticate(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	raw, ok := bearerToken(c)
	if !ok {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="herald"`)
		return problem(c, fiber.StatusUnauthorized, "Unauthorized", "send Authorization: Bearer <API key>")
	}
	if textReason([]byte(raw)) != "" {
		// Not a key Herald made, and not text PostgreSQL would look up.
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="herald", error="invalid_token"`)
		return apikeys.ErrInvalid
	}
	key, err := apikeys.Authenticate(c.UserContext(), s.Pool, raw)
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="herald", error="invalid_token"`)
		return err
	}
	c.Locals(localsKey, key)
	return c.Next()
}

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

// allow lets only keys with one of roles through.
func (s *Server) allow(roles ...apikeys.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		key, _ := c.Locals(localsKey).(*apikeys.Key)
		if key == nil || !slices.Contains(roles, key.Role) {
			return problem(c, fiber.StatusForbidden, "Forbidden", fmt.Sprintf("this needs one of the roles %v", roles))
		}
		return c.Next()
	}
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
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type")
	c.Set(fiber.HeaderAccessControlMaxAge, "600")
	if c.Method() == fiber.MethodOptions {
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.Next()
}

// pageHeaders keeps pages from leaking their token-bearing URLs and from
// running anything but our own scripts.
func (s *Server) pageHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
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
