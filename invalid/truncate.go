package invalid

import (
	"strings"
	"unicode/utf8"
)

// Truncate cuts s to at most maxBytes bytes at a character boundary, so
// that the result is valid UTF-8 (PostgreSQL refuses anything else); bytes
// that were not valid UTF-8 become U+FFFD first.
func Truncate(s string, maxBytes int) string {
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
