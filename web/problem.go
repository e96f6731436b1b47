package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the input at fault, with Reason saying what is wrong.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func problem(c *fiber.Ctx, status int, title, detail string) error {
	return writeProblem(c, Problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
}

func writeProblem(c *fiber.Ctx, p Problem) error {
	b, _ := json.Marshal(p)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(p.Status).Send(b)
}

// handleError maps domain errors to problems; anything unknown is a 500
// whose detail stays in the log.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var bad *malformed
	if errors.As(err, &bad) {
		return writeProblem(c, Problem{Type: "about:blank", Title: "Malformed request", Status: fiber.StatusBadRequest,
			Detail: bad.field + ": " + bad.reason, Field: bad.field, Reason: bad.reason})
	}
	if ie, ok := invalid.As(err); ok {
		return writeProblem(c, Problem{Type: "about:blank", Title: "Invalid input", Status: fiber.StatusUnprocessableEntity,
			Detail: ie.Error(), Field: ie.Field, Reason: ie.Reason})
	}
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		return problem(c, fe.Code, httpTitle(fe.Code), fe.Message)
	case errors.Is(err, campaigns.ErrTransition):
		return problem(c, fiber.StatusConflict, "Not allowed now", strings.TrimPrefix(err.Error(), "campaigns: "))
	case errors.Is(err, subscribers.ErrNotFound), errors.Is(err, apps.ErrNotFound), errors.Is(err, campaigns.ErrNotFound):
		return problem(c, fiber.StatusNotFound, "Not found", "")
	case errors.Is(err, subscribers.ErrConflict):
		return problem(c, fiber.StatusConflict, "Conflict", strings.TrimPrefix(err.Error(), "subscribers: "))
	case errors.Is(err, subscribers.ErrImportTooLarge):
		return problem(c, fiber.StatusRequestEntityTooLarge, "Too large", fmt.Sprintf("imports are limited to %d bytes", s.Config.MaxImportBytes))
	case errors.Is(err, optin.ErrIdentity):
		return writeProblem(c, Problem{Type: "about:blank", Title: "Identity not verified", Status: fiber.StatusForbidden,
			Field: "identity_hmac", Reason: "does not match HMAC-SHA256(app identity secret, external_id)"})
	case errors.Is(err, optin.ErrForbidden):
		return problem(c, fiber.StatusForbidden, "Forbidden", err.Error())
	case errors.Is(err, optin.ErrTokenInvalid), errors.Is(err, optin.ErrTokenExpired):
		return writeProblem(c, Problem{Type: "about:blank", Title: "Invalid token", Status: fiber.StatusUnauthorized,
			Field: "subscriber_token", Reason: "is unknown or expired"})
	case errors.Is(err, apikeys.ErrInvalid):
		return problem(c, fiber.StatusUnauthorized, "Unauthorized", "send Authorization: Bearer <API key>")
	}
	s.Logger.Error("request failed", "method", c.Method(), "path", c.Route().Path, "error", err)
	return problem(c, fiber.StatusInternalServerError, "Internal error", "the error was logged")
}

func httpTitle(code int) string {
	switch code {
	case fiber.StatusNotFound:
		return "Not found"
	case fiber.StatusMethodNotAllowed:
		return "Method not allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "Too large"
	case fiber.StatusBadRequest:
		return "Bad request"
	case fiber.StatusUnsupportedMediaType:
		return "Unsupported media type"
	case fiber.StatusTooManyRequests:
		return "Too many requests"
	case fiber.StatusUnauthorized:
		return "Unauthorized"
	case fiber.StatusForbidden:
		return "Forbidden"
	}
	return fiber.ErrInternalServerError.Message
}

// decodeJSON reads a bounded JSON body into v, refusing unknown fields and
// trailing data, and names the field at fault.
func (s *Server) decodeJSON(c *fiber.Ctx, v any) error {
	if cl := c.Request().Header.ContentLength(); cl > s.Config.MaxBodyBytes {
		// The unread body must not be taken for the next request.
		c.Context().SetConnectionClose()
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("JSON bodies are limited to %d bytes", s.Config.MaxBodyBytes))
	}
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
		// text/plain is what navigator.sendBeacon and simple CORS requests send.
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "send Content-Type: application/json")
	}
	body := c.Body()
	if len(body) > s.Config.MaxBodyBytes {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("JSON bodies are limited to %d bytes", s.Config.MaxBodyBytes))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &malformed{field: "body", reason: "has data after the JSON value"}
	}
	return nil
}

// malformed is a body that is not the JSON we expect (400, not 422).
type malformed struct{ field, reason string }

func (m *malformed) Error() string { return m.field + ": " + m.reason }

func jsonError(err error) error {
	ie := jsonProblem(err).(*invalid.Error)
	return &malformed{field: ie.Field, reason: ie.Reason}
}

func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalid.Fieldf("body", "is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		return invalid.Fieldf(typ.Field, "must be %s, not %s", typ.Type.String(), typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid.Field("body", "is empty or cut short; send a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid.Field(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a known field")
	}
	return invalid.Field("body", "is not valid JSON")
}
