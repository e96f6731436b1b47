package web

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/users"
)

const (
	// sessionCookie holds the random session id and nothing else.
	sessionCookie = "herald_session"
	// csrfHeader carries the session's CSRF token on API requests that
	// change something; forms carry it as the csrfField.
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf"

	userLocalsKey = "herald_session_user"

	stageFull         = "full"
	stageSecondFactor = "second_factor"
	stageEnrol        = "enrol"
)

// signedIn is the caller a session cookie authenticated.
type signedIn struct {
	raw     string // the cookie's session id, for CSRF and sign-out
	session users.Session
	user    users.User
}

func sessionOf(c *fiber.Ctx) *signedIn {
	u, _ := c.Locals(userLocalsKey).(*signedIn)
	return u
}

func apiKeyOf(c *fiber.Ctx) *apikeys.Key {
	k, _ := c.Locals(localsKey).(*apikeys.Key)
	return k
}

// roleOf is the caller's role, API key or session; "" for nobody.
func roleOf(c *fiber.Ctx) access.Role {
	if k := apiKeyOf(c); k != nil {
		return k.Role
	}
	if u := sessionOf(c); u != nil {
		return u.user.Role
	}
	return ""
}

// authenticate admits a staff route's caller: an API key (Authorization:
// Bearer) or a full session (the cookie), which must also send the CSRF
// token on every request that changes something. Its answers are never
// stored by caches: they carry API keys, identity secrets and personal
// data, and a 401 must not be served from a cache either.
func (s *Server) authenticate(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if c.Get(fiber.HeaderAuthorization) != "" {
		return s.authenticateKey(c)
	}
	raw := c.Cookies(sessionCookie)
	if raw == "" && c.Method() == fiber.MethodGet && !strings.HasPrefix(c.Path(), "/api/") &&
		strings.Contains(c.Get(fiber.HeaderAccept), "text/html") {
		// A person opening a staff page (the River UI) signs in first.
		return c.Redirect("/sign-in?next="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
	}
	if raw == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="herald"`)
		return problem(c, fiber.StatusUnauthorized, "Unauthorized", "send Authorization: Bearer <API key>, or sign in at /sign-in")
	}
	u, err := s.sessionFor(c, raw)
	if err != nil {
		return err
	}
	if u == nil || u.session.Stage != stageFull {
		return problem(c, fiber.StatusUnauthorized, "Unauthorized", "the session has ended or is not complete: sign in at /sign-in")
	}
	if !safeMethod(c.Method()) {
		if !s.sameOrigin(c) {
			return problem(c, fiber.StatusForbidden, "Forbidden", "cross-site request refused")
		}
		if !s.Users.CheckCSRF(raw, c.Get(csrfHeader)) {
			return problem(c, fiber.StatusForbidden, "Forbidden", "send the session's CSRF token in "+csrfHeader+" (GET /api/v1/session gives it)")
		}
	}
	c.Locals(userLocalsKey, u)
	return c.Next()
}

func (s *Server) authenticateKey(c *fiber.Ctx) error {
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

// sessionFor looks up the session a cookie names: nil (and no error) when
// it is unknown or ended, in which case the cookie is cleared.
func (s *Server) sessionFor(c *fiber.Ctx, raw string) (*signedIn, error) {
	if len(raw) > 128 || textReason([]byte(raw)) != "" {
		s.clearSessionCookie(c)
		return nil, nil
	}
	sess, user, err := s.Users.Authenticate(c.UserContext(), raw)
	if errors.Is(err, users.ErrNoSession) {
		s.clearSessionCookie(c)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &signedIn{raw: raw, session: sess, user: user}, nil
}

// allow lets only callers with one of roles through.
func (s *Server) allow(roles ...access.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if role := roleOf(c); role == "" || !slices.Contains(roles, role) {
			return problem(c, fiber.StatusForbidden, "Forbidden", "this needs one of the roles "+joinRoles(roles))
		}
		return c.Next()
	}
}

func joinRoles(roles []access.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// requireSession admits a page's caller whose session is in one of stages;
// others are sent to the step they are at (sign-in, second factor, TOTP
// set-up). Form posts must carry the session's CSRF token.
func (s *Server) requireSession(stages ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		u, err := s.sessionFor(c, c.Cookies(sessionCookie))
		if err != nil {
			return err
		}
		if u == nil {
			s.langOf(c) // a ?lang= choice carries over to the sign-in page
			return c.Redirect("/sign-in?next="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
		}
		if !slices.Contains(stages, u.session.Stage) {
			switch u.session.Stage {
			case stageSecondFactor:
				return c.Redirect("/sign-in/code", fiber.StatusSeeOther)
			case stageEnrol:
				return c.Redirect("/account/totp", fiber.StatusSeeOther)
			}
			return c.Redirect("/account", fiber.StatusSeeOther)
		}
		if !safeMethod(c.Method()) {
			if !s.sameOrigin(c) || !s.Users.CheckCSRF(u.raw, c.FormValue(csrfField)) {
				return s.forbiddenPage(c)
			}
		}
		c.Locals(userLocalsKey, u)
		return c.Next()
	}
}

// sameOrigin reports whether a state-changing request comes from Herald's
// own pages: browsers send Origin on every cross-site POST, so one that
// names another site is refused even before the CSRF token is checked.
// A missing Origin (older browsers, non-browser clients) is left to the
// token.
func (s *Server) sameOrigin(c *fiber.Ctx) bool {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return true
	}
	if origin == "null" {
		return false
	}
	own, err := url.Parse(s.Config.PublicURL)
	if err != nil {
		return false
	}
	got, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if got.Scheme == own.Scheme && got.Host == own.Host {
		return true
	}
	// The host the browser was actually talking to (a development server
	// reached as localhost while HERALD_PUBLIC_URL names 127.0.0.1).
	return got.Host == c.Hostname() && (got.Scheme == c.Protocol())
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// setSessionCookie gives the browser a new session id: HttpOnly (no script
// reads it), SameSite=Lax (no cross-site POST carries it), Secure when
// Herald is served over https.
func (s *Server) setSessionCookie(c *fiber.Ctx, raw string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name: sessionCookie, Value: raw, Path: "/", Expires: expires,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies(),
	})
}

func (s *Server) clearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name: sessionCookie, Value: "", Path: "/", Expires: time.Unix(1, 0), MaxAge: -1,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies(),
	})
}

func (s *Server) secureCookies() bool { return strings.HasPrefix(s.Config.PublicURL, "https://") }
