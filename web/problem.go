package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/webhooks"
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
	var limited *rateLimited
	if errors.As(err, &limited) {
		c.Set(fiber.HeaderRetryAfter, limited.retryAfter())
		return problem(c, fiber.StatusTooManyRequests, "Too many requests", limited.detail+"; retry after the Retry-After seconds")
	}
	if ie, ok := invalid.As(err); ok {
		return writeProblem(c, Problem{Type: "about:blank", Title: "Invalid input", Status: fiber.StatusUnprocessableEntity,
			Detail: ie.Error(), Field: ie.Field, Reason: ie.Reason})
	}
	var locked *users.LockedOutError
	if errors.As(err, &locked) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(locked.RetryAfter/time.Second)+1))
		return problem(c, fiber.StatusTooManyRequests, "Too many requests", "too many failed attempts; retry after the Retry-After seconds")
	}
	var fe *fiber.Error
	switch {
	case errors.Is(err, users.ErrNotFound):
		return problem(c, fiber.StatusNotFound, "Not found", "")
	case errors.Is(err, users.ErrConflict), errors.Is(err, users.ErrLastAdmin):
		return problem(c, fiber.StatusConflict, "Conflict", strings.TrimPrefix(err.Error(), "users: "))
	case errors.Is(err, users.ErrWrongPassword):
		return writeProblem(c, Problem{Type: "about:blank", Title: "Invalid input", Status: fiber.StatusUnprocessableEntity,
			Field: "password", Reason: "is wrong"})
	case errors.Is(err, users.ErrBadCredentials), errors.Is(err, users.ErrNoSession):
		return problem(c, fiber.StatusUnauthorized, "Unauthorized", "sign in at /sign-in")
	case errors.Is(err, users.ErrLinkInvalid):
		return problem(c, fiber.StatusNotFound, "Not found", "no such link")
	case errors.Is(err, users.ErrLinkExpired):
		return problem(c, fiber.StatusGone, "Gone", "the link has expired")
	case errors.Is(err, users.ErrLinkUsed):
		return problem(c, fiber.StatusConflict, "Conflict", "the link was used already")
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
	case errors.Is(err, conversations.ErrNotFound), errors.Is(err, webhooks.ErrNotFound):
		return problem(c, fiber.StatusNotFound, "Not found", "")
	case errors.Is(err, conversations.ErrConflict):
		return problem(c, fiber.StatusConflict, "Conflict", strings.TrimPrefix(err.Error(), "conversations: "))
	case errors.Is(err, conversations.ErrSubscriberGone):
		return problem(c, fiber.StatusUnprocessableEntity, "Subscriber unreachable", strings.TrimPrefix(err.Error(), "conversations: "))
	case errors.Is(err, conversations.ErrForbidden):
		return problem(c, fiber.StatusForbidden, "Forbidden", strings.TrimPrefix(err.Error(), "conversations: "))
	case errors.Is(err, conversations.ErrBadToken):
		return writeProblem(c, Problem{Type: "about:blank", Title: "Invalid token", Status: fiber.StatusUnprocessableEntity,
			Field: "token", Reason: "is not a token Herald issued, or it expired"})
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
	case fiber.StatusRequestTimeout:
		return "Request timeout"
	case fiber.StatusUnauthorized:
		return "Unauthorized"
	case fiber.StatusForbidden:
		return "Forbidden"
	}
	return fiber.ErrInternalServerError.Message
}

// decodeJSON reads a JSON body into v, refusing unknown fields, trailing
// data and strings that are not text (see edge.go), and names the field at
// fault. readBody has already bounded the body by the route's limit while
// reading it, and refused compressed ones.
func (s *Server) decodeJSON(c *fiber.Ctx, v any) error {
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
		// text/plain is what navigator.sendBeacon and simple CORS requests send.
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "send Content-Type: application/json")
	}
	// The raw body: fiber's Ctx.Body() would inflate a compressed one.
	body := c.Request().Body()
	if len(body) > s.Config.MaxBodyBytes {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("JSON bodies are limited to %d bytes", s.Config.MaxBodyBytes))
	}
	if field, reason, bad := jsonTextProblem(body); bad {
		return invalid.Field(field, reason)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, body, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &malformed{field: "body", reason: "has data after the JSON value"}
	}
	return nil
}

// malformed is a body that is not the JSON we expect (400, not 422).
type malformed struct{ field, reason string }

func (m *malformed) Error() string { return m.field + ": " + m.reason }

// jsonError says what is wrong with a body that did not decode into a
// value of type t, in words for people rather than Go types: a syntax error,
// a wrong type or an unknown field is malformed (400); valid JSON whose
// value a field cannot take (a time that is not one) is invalid (422).
func jsonError(err error, body []byte, t reflect.Type) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &malformed{field: "body", reason: fmt.Sprintf("is not valid JSON: %s (at byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &malformed{field: field, reason: fmt.Sprintf("must be %s, not %s", jsonTypeName(typ.Type), jsonValueName(typ.Value))}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &malformed{field: "body", reason: "is empty or cut short; send a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &malformed{field: strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), reason: "is not a known field"}
	}
	// A type that reads its own JSON (time.Time) refused a value; the
	// decoder does not say where, so find it.
	if field, ft, ok := locateRefusedValue(body, t); ok {
		if ft == timeType {
			return invalid.Field(field, "must be an RFC 3339 time such as 2026-12-01T09:00:00Z")
		}
		return invalid.Field(field, "is not a valid value for this field")
	}
	return &malformed{field: "body", reason: "is not the JSON this request takes"}
}

// jsonTypeName names what a Go type takes in JSON.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return "an RFC 3339 time such as 2026-12-01T09:00:00Z"
	case t == rawMessageType:
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, not negative"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a JSON value"
}

// jsonValueName names the JSON value an UnmarshalTypeError found.
func jsonValueName(v string) string {
	switch v {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "an array"
	case "object":
		return "an object"
	}
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n // out of range, or not whole
	}
	return v
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// locateRefusedValue walks the JSON document in body beside the Go type t
// and returns the path of the first value whose type decodes itself (a
// json.Unmarshaler such as time.Time) and refuses it, with that type.
func locateRefusedValue(body []byte, t reflect.Type) (string, reflect.Type, bool) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil || t == nil {
		return "", nil, false
	}
	return refusedValue(doc, t, "")
}

func refusedValue(v any, t reflect.Type, path string) (string, reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return "", nil, false // null leaves the zero value
	}
	if t != rawMessageType && reflect.PointerTo(t).Implements(unmarshalerType) {
		raw, err := json.Marshal(v)
		if err != nil {
			return "", nil, false
		}
		if reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw) != nil {
			return pathOr(path, "body"), t, true
		}
		return "", nil, false
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return "", nil, false
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			var ft reflect.Type
			if t.Kind() == reflect.Map {
				ft = t.Elem()
			} else if ft, ok = jsonField(t, k); !ok {
				continue
			}
			if f, ftype, found := refusedValue(m[k], ft, join(k)); found {
				return f, ftype, true
			}
		}
	case reflect.Slice, reflect.Array:
		a, ok := v.([]any)
		if !ok {
			return "", nil, false
		}
		for i, e := range a {
			if f, ftype, found := refusedValue(e, t.Elem(), pathOr(path, "body")+"["+strconv.Itoa(i)+"]"); found {
				return f, ftype, true
			}
		}
	}
	return "", nil, false
}

// jsonField is the type of the struct field encoding/json fills from the
// member name, looking into embedded structs as it does.
func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	var fold reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		tagName, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && tagName == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if ft, ok := jsonField(et, name); ok {
					return ft, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		key := tagName
		if key == "" {
			key = f.Name
		}
		if key == name {
			return f.Type, true
		}
		if fold == nil && strings.EqualFold(key, name) {
			fold = f.Type
		}
	}
	return fold, fold != nil
}
