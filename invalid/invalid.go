// Package invalid is the error domain packages return for bad input, so that
// web/ can answer with a problem that names the field and the reason without
// domain code knowing about HTTP.
package invalid

import (
	"errors"
	"fmt"
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
