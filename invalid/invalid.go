// Package invalid is the error domain packages return for bad input, so that
// web/ can answer with a problem that names the field and the reason without
// domain code knowing about HTTP.
package invalid

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error says which input field is wrong and why.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Field returns an *Error for field.
func Field(field, reason string) error { return &Error{Field: field, Reason: reason} }

// Fieldf returns an *Error with a formatted reason.
func Fieldf(field, format string, args ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Truncate returns s cut to at most maxBytes bytes, for columns and headers
// bounded in bytes. It cuts at a rune boundary, never inside a character,
// and replaces invalid UTF-8 in s with U+FFFD first, so the result is always
// valid UTF-8: PostgreSQL refuses a text value that is not, and with it the
// whole statement.
func Truncate(s string, maxBytes int) string {
	if maxBytes <= 0 {
		return ""
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= maxBytes {
		return s
	}
	cut := maxBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
