package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"riverqueue.com/riverui"
)

// riverUIPrefix is where River's own UI is mounted, for admins.
const riverUIPrefix = "/console/river"

// riverUICSP is the River UI's Content-Security-Policy: its own scripts
// and styles from Herald (no inline script), its API on Herald, and no
// framing. Its components set styles inline.
const riverUICSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// riverUIShim is a script every River UI page loads before River's own: it
// adds the session's CSRF token to the UI's requests that change something
// (cancel, retry, delete, pause), so they pass the same check as every
// other session write (authenticate). The token comes from GET
// /api/v1/session, which only the session's own pages can read.
const riverUIShim = `(function () {
  "use strict";
  const token = fetch("/api/v1/session", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : {}))
    .then((s) => s.csrf_token || "");
  const send = window.fetch.bind(window);
  window.fetch = async function (input, init) {
    init = Object.assign({}, init);
    const method = (init.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
    if (method !== "GET" && method !== "HEAD") {
      const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
      headers.set("X-CSRF-Token", await token);
      init.headers = headers;
    }
    return send(input, init);
  };
})();
`

// riverUI is River's UI (riverqueue.com/riverui) as a fiber handler. Its
// background queries (job counts) start with the first request and stop
// with Deps.Background.
type riverUI struct {
	handler *riverui.Handler
	serve   fiber.Handler
	start   sync.Once
	err     error
	ctx     context.Context
}

func (s *Server) newRiverUI() (*riverUI, error) {
	if s.River == nil {
		return nil, nil
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(s.River, nil),
		Logger:    s.Logger,
		Prefix:    riverUIPrefix,
		// Job arguments name subscribers and campaigns: shown on demand.
		JobListHideArgsByDefault: true,
	})
	if err != nil {
		return nil, fmt.Errorf("web: river UI: %w", err)
	}
	ctx := s.Background
	if ctx == nil {
		ctx = context.Background()
	}
	return &riverUI{handler: h, serve: adaptor.HTTPHandler(h), ctx: ctx}, nil
}

// handle serves the River UI to an admin whom the staff gate admitted.
func (u *riverUI) handle(c *fiber.Ctx) error {
	u.start.Do(func() { u.err = u.handler.Start(u.ctx) })
	if u.err != nil {
		return fmt.Errorf("web: start river UI: %w", u.err)
	}
	if err := u.serve(c); err != nil {
		return err
	}
	h := &c.Response().Header
	// River's handler sets some of the security headers again: one each.
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderContentSecurityPolicy, riverUICSP)
	h.Set(fiber.HeaderCacheControl, "no-store")
	if bytes.HasPrefix(h.ContentType(), []byte("text/html")) {
		// Before River's own scripts, so that its first request already
		// carries the token.
		body := bytes.Replace(c.Response().Body(), []byte("<head>"),
			[]byte(`<head><script src="`+riverUIPrefix+`-csrf.js"></script>`), 1)
		c.Response().SetBodyRaw(body)
	}
	return nil
}

// shim serves riverUIShim.
func (u *riverUI) shim(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(http.StatusOK).SendString(riverUIShim)
}
