package web

import (
	"bytes"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// The console is a small client app on the same /api/v1 that integrators
// use: Preact with htm and signals, vendored as ES modules
// (scripts/vendor-js.sh), so it needs no build step and no CDN. The server
// serves one page, and the app's files from the binary.

// consolePage is the console's one page; the app reads the signed-in
// person, their role and CSRF token from GET /api/v1/session.
func (s *Server) consolePage(c *fiber.Ctx) error {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, "console.html", fiber.Map{"Lang": s.langOf(c)}); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentSecurityPolicy, pageCSP)
	return c.Send(buf.Bytes())
}

// consoleFiles registers the console's scripts and styles, each at
// /static/console/<path>.
func (s *Server) consoleFiles(r *router) {
	err := fs.WalkDir(staticFS, "static/console", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var typ string
		switch path.Ext(name) {
		case ".js":
			typ = "text/javascript"
		case ".css":
			typ = "text/css"
		default:
			return nil // licences and notes are read in the repository
		}
		r.add(fiber.MethodGet, "/"+strings.TrimPrefix(name, ""), public, s.static(name, typ))
		return nil
	})
	if err != nil {
		panic(err) // the files are part of the binary
	}
}
