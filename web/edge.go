package web

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/invalid"
)

// Text at the edge.
//
// PostgreSQL stores text and jsonb only as valid UTF-8 without NUL: a NUL
// byte fails a statement with 22021, a \u0000 escape or a lone UTF-16
// surrogate in jsonb with 22P05, and the request would end as a 500.
// encoding/json, for its part, quietly turns invalid UTF-8 and lone
// surrogates into U+FFFD in strings, and keeps them as they are in
// json.RawMessage fields (attributes, segments). So every piece of text a
// request brings is checked once, here, before any handler sees it: JSON
// bodies in decodeJSON (jsonTextProblem), query parameters, form fields and
// path parameters in checkText and checkParams. A problem is a 422 that
// names the field.

// textReason says what is wrong with s as text, or "" when nothing is.
func textReason(s []byte) string {
	if bytes.IndexByte(s, 0) >= 0 {
		return "must not contain NUL characters"
	}
	if !utf8.Valid(s) {
		return "must be valid UTF-8 text"
	}
	return ""
}

// checkText refuses query parameters (and the fields of a form body) that
// are not text. It runs for every request, after readBody.
func checkText(c *fiber.Ctx) error {
	if err := argsProblem("query", c.Context().QueryArgs().VisitAll); err != nil {
		return err
	}
	ct := bytes.ToLower(c.Request().Header.ContentType())
	if bytes.HasPrefix(ct, []byte(fiber.MIMEMultipartForm)) {
		// No route takes multipart, and its values would escape the check
		// below (a form field read with FormValue parses it).
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "multipart bodies are not accepted: send application/x-www-form-urlencoded or JSON")
	}
	if c.Method() == fiber.MethodPost && bytes.HasPrefix(ct, []byte(fiber.MIMEApplicationForm)) {
		if err := argsProblem("body", c.Context().PostArgs().VisitAll); err != nil {
			return err
		}
	}
	return c.Next()
}

// argsProblem checks decoded name=value pairs and returns the first that is
// not text as a field error; a bad name is blamed on where (the query, or
// the form body).
func argsProblem(where string, visit func(func(k, v []byte))) error {
	var err error
	visit(func(k, v []byte) {
		if err != nil {
			return
		}
		if r := textReason(k); r != "" {
			err = invalid.Field(where, "has a parameter name that "+r)
		} else if r := textReason(v); r != "" {
			err = invalid.Field(string(k), r)
		}
	})
	return err
}

// checkParams refuses path parameters that are not text. It is the first
// handler of every route with parameters, where fiber knows their names.
func checkParams(c *fiber.Ctx) error {
	for _, name := range c.Route().Params {
		if r := textReason([]byte(c.Params(name))); r != "" {
			return invalid.Field(name, r)
		}
	}
	return c.Next()
}

// maxJSONDepth is encoding/json's own nesting limit; deeper documents are
// left to the decoder to refuse.
const maxJSONDepth = 10000

// jsonTextProblem finds the first string in a JSON document (a member name
// or a value) that is not text PostgreSQL can store, and returns its path
// (device.token, content.actions[1].label; "body" at the top) and why. It
// returns ok false when every string is text, or when the document is not
// JSON: then the decoder says what is wrong with it.
func jsonTextProblem(body []byte) (field, reason string, ok bool) {
	sc := jsonScanner{b: body}
	return sc.value("", 0)
}

type jsonScanner struct {
	b []byte
	i int
}

func (sc *jsonScanner) ws() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\r', '\n':
			sc.i++
		default:
			return
		}
	}
}

func pathOr(path, top string) string {
	if path == "" {
		return top
	}
	return path
}

// value scans one value at path. A document that stops being JSON ends the
// scan with ok false; the decoder reports it.
func (sc *jsonScanner) value(path string, depth int) (string, string, bool) {
	if depth > maxJSONDepth {
		sc.i = len(sc.b)
		return "", "", false
	}
	sc.ws()
	if sc.i >= len(sc.b) {
		return "", "", false
	}
	switch sc.b[sc.i] {
	case '"':
		if r, _ := sc.str(); r != "" {
			return pathOr(path, "body"), r, true
		}
		return "", "", false
	case '{':
		sc.i++
		for {
			sc.ws()
			if sc.i < len(sc.b) && sc.b[sc.i] == '}' {
				sc.i++
				return "", "", false
			}
			if sc.i >= len(sc.b) || sc.b[sc.i] != '"' {
				sc.i = len(sc.b)
				return "", "", false
			}
			start := sc.i + 1
			r, closed := sc.str()
			if r != "" {
				return pathOr(path, "body"), "has a member name that " + r, true
			}
			if !closed {
				return "", "", false
			}
			key := string(sc.b[start : sc.i-1])
			if k, err := strconv.Unquote(`"` + key + `"`); err == nil {
				key = k
			}
			sc.ws()
			if sc.i >= len(sc.b) || sc.b[sc.i] != ':' {
				sc.i = len(sc.b)
				return "", "", false
			}
			sc.i++
			child := key
			if path != "" {
				child = path + "." + key
			}
			if f, r, ok := sc.value(child, depth+1); ok {
				return f, r, ok
			}
			sc.ws()
			if sc.i < len(sc.b) && sc.b[sc.i] == ',' {
				sc.i++
				continue
			}
			if sc.i < len(sc.b) && sc.b[sc.i] == '}' {
				sc.i++
				return "", "", false
			}
			sc.i = len(sc.b)
			return "", "", false
		}
	case '[':
		sc.i++
		for n := 0; ; n++ {
			sc.ws()
			if sc.i < len(sc.b) && sc.b[sc.i] == ']' {
				sc.i++
				return "", "", false
			}
			if f, r, ok := sc.value(pathOr(path, "body")+"["+strconv.Itoa(n)+"]", depth+1); ok {
				return f, r, ok
			}
			sc.ws()
			if sc.i < len(sc.b) && sc.b[sc.i] == ',' {
				sc.i++
				continue
			}
			if sc.i < len(sc.b) && sc.b[sc.i] == ']' {
				sc.i++
				return "", "", false
			}
			sc.i = len(sc.b)
			return "", "", false
		}
	default:
		// A number, true, false or null: skip to the next delimiter. A
		// stray byte here is the decoder's to report.
		for sc.i < len(sc.b) {
			switch sc.b[sc.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return "", "", false
			case '"', '{', '[':
				sc.i = len(sc.b)
				return "", "", false
			}
			sc.i++
		}
		return "", "", false
	}
}

// str scans the string starting at sc.i (its opening quote) and leaves sc.i
// after its closing quote. It returns why the string is not text, or "",
// and whether the string was closed. An unterminated string or a broken
// escape ends the scan (closed false, and sc.i at the end).
func (sc *jsonScanner) str() (reason string, closed bool) {
	sc.i++ // the opening quote
	for sc.i < len(sc.b) {
		c := sc.b[sc.i]
		switch {
		case c == '"':
			sc.i++
			return "", true
		case c == 0:
			return "must not contain NUL characters", false
		case c == '\\':
			if sc.i+1 >= len(sc.b) {
				sc.i = len(sc.b)
				return "", false
			}
			if sc.b[sc.i+1] != 'u' {
				sc.i += 2
				continue
			}
			r, ok := sc.hex4(sc.i + 2)
			if !ok {
				sc.i = len(sc.b)
				return "", false
			}
			sc.i += 6
			switch {
			case r == 0:
				return "must not contain NUL characters (\\u0000)", false
			case r >= 0xDC00 && r <= 0xDFFF:
				return "must be valid UTF-16: \\u" + strconv.FormatInt(int64(r), 16) + " is a low surrogate without its high one", false
			case r >= 0xD800 && r <= 0xDBFF:
				low, ok := rune(0), false
				if sc.i+1 < len(sc.b) && sc.b[sc.i] == '\\' && sc.b[sc.i+1] == 'u' {
					low, ok = sc.hex4(sc.i + 2)
				}
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return "must be valid UTF-16: \\u" + strconv.FormatInt(int64(r), 16) + " is a high surrogate without its low one", false
				}
				sc.i += 6
			}
		case c < utf8.RuneSelf:
			sc.i++
		default:
			r, size := utf8.DecodeRune(sc.b[sc.i:])
			if r == utf8.RuneError && size <= 1 {
				return "must be valid UTF-8 text", false
			}
			sc.i += size
		}
	}
	return "", false
}

func (sc *jsonScanner) hex4(at int) (rune, bool) {
	if at+4 > len(sc.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(sc.b[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
