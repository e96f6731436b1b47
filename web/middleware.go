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

// authenticate requires a valid API key on the admin API.
func (s *Server) authenticate(c *fiber.Ctx) error {
	raw, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || raw == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="herald"`)
		return problem(c, fiber.StatusUnauthorized, "Unauthorized", "send Authorization: Bearer <API key>")
	}
	key, err := apikeys.Authenticate(c.UserContext(), s.Pool, strings.TrimSpace(raw))
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="herald", error="invalid_token"`)
		return err
	}
	c.Locals(localsKey, key)
	return c.Next()
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

func (s *Server) limitByIP(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodOptions {
		return c.Next()
	}
	return s.limit(c, s.ipLimit, "ip:"+clientIP(c).String())
}

func (s *Server) limit(c *fiber.Ctx, l *limiter, key string) error {
	ok, wait := l.allow(key)
	if ok {
		return c.Next()
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait.Seconds())+1))
	return problem(c, fiber.StatusTooManyRequests, "Too many requests", "slow down and retry after the Retry-After seconds")
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
	ip := strings.TrimSpace(strings.Split(c.IP(), ",")[0])
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
