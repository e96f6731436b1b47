package web

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// createImport takes a CSV body (Content-Type text/csv) and queues its import.
func (s *Server) createImport(c *fiber.Ctx) error {
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if !strings.HasPrefix(ct, "text/csv") {
		c.Context().SetConnectionClose()
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "send the file as the body with Content-Type: text/csv")
	}
	if cl := c.Request().Header.ContentLength(); cl > s.Config.MaxImportBytes {
		c.Context().SetConnectionClose()
		return subscribers.ErrImportTooLarge
	}
	// Streamed, not read whole: readBody counts it (body.go), and
	// CreateImport stops reading past the import limit.
	body := bodyStream(c)
	filename := c.Query("filename", "upload.csv")
	if err := subscribers.ValidateText("filename", filename, 255, false); err != nil {
		return err
	}
	imp, err := s.Subscribers.CreateImport(c.UserContext(), actorOf(c), filename, body, int64(s.Config.MaxImportBytes))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderLocation, fmt.Sprintf("/api/v1/imports/%d", imp.ID))
	return c.Status(fiber.StatusAccepted).JSON(imp)
}

func (s *Server) getImport(c *fiber.Ctx) error {
	id, err := parseID(c.Params("id"))
	if err != nil {
		return invalid.Field("id", "must be an import id")
	}
	imp, err := subscribers.GetImport(c.UserContext(), s.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(imp)
}
