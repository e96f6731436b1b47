package web

import (
	"embed"

	"github.com/gofiber/fiber/v2"
)

// The OpenAPI 3.1 documents of the admin API (/api/v1) and the public API
// (/public/v1), written by hand and embedded in the binary. TestOpenAPI
// keeps them in step with the route table: a route without an operation,
// or an operation without a route, fails it.
//
//go:embed openapi/admin.json openapi/public.json
var openAPIFS embed.FS

// OpenAPIDocuments are the embedded OpenAPI documents by the path each is
// served at.
func OpenAPIDocuments() map[string][]byte {
	return map[string][]byte{
		"/api/v1/openapi.json":    mustRead(openAPIFS, "openapi/admin.json"),
		"/public/v1/openapi.json": mustRead(openAPIFS, "openapi/public.json"),
	}
}

func mustRead(fs embed.FS, name string) []byte {
	b, err := fs.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// openAPI serves one of the documents. It is no secret and the same for
// every caller: any origin may read it, and caches may keep it a while.
func openAPI(path string) fiber.Handler {
	body := OpenAPIDocuments()[path]
	if body == nil {
		panic("web: no OpenAPI document for " + path)
	}
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
		return c.Send(body)
	}
}
