package subscribers

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/herald-im/herald/invalid"
)

// MaxAttributesBytes bounds a subscriber's JSON attributes.
const MaxAttributesBytes = 16 << 10

// ValidateEmail accepts a bare address such as ada@example.com.
func ValidateEmail(field, email string) error {
	if len(email) > 254 {
		return invalid.Field(field, "is longer than 254 characters")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") {
		return invalid.Field(field, "is not an email address like name@example.com")
	}
	return nil
}

// ValidateLocale accepts a BCP 47 tag such as de-DE and returns it canonical.
func ValidateLocale(field, locale string) (string, error) {
	if locale == "" {
		return "", nil
	}
	tag, err := language.Parse(locale)
	if err != nil || len(locale) > 35 {
		return "", invalid.Field(field, "is not a BCP 47 language tag such as de-DE")
	}
	return tag.String(), nil
}

// notZones are names and directories of a zoneinfo tree that are not a
// place's time zone.
var notZones = map[string]bool{"Factory": true, "posixrules": true, "localtime": true, "right/": true, "posix/": true,
	"SystemV/": true}

// ValidateTimezone accepts an IANA zone name such as Europe/Berlin.
func ValidateTimezone(field, tz string) error {
	if tz == "" {
		return nil
	}
	// LoadLocation also accepts "Local", file paths, and whatever else lies
	// in the zoneinfo directory: the leap-second "right/" and "posix/"
	// copies, SystemV's, and "Factory", "posixrules" and "localtime", none
	// of which is a place's zone.
	first, _, _ := strings.Cut(tz, "/")
	if tz == "Local" || strings.ContainsAny(tz, `\. `) || strings.HasPrefix(tz, "/") || len(tz) > 64 ||
		notZones[tz] || notZones[first+"/"] {
		return invalid.Field(field, "is not an IANA time zone such as Europe/Berlin")
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return invalid.Field(field, "is not an IANA time zone such as Europe/Berlin")
	}
	return nil
}

// ValidateExternalID accepts up to 255 printable characters.
func ValidateExternalID(field, id string) error {
	if id == "" || len(id) > 255 || !utf8.ValidString(id) {
		return invalid.Field(field, "must be 1-255 characters")
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return invalid.Field(field, "must not contain control characters")
		}
	}
	return nil
}

// ValidateAttributes accepts a JSON object of at most MaxAttributesBytes,
// nested at most 8 levels, that PostgreSQL's jsonb takes as it is: valid
// UTF-8, no NUL (\u0000) and no unpaired surrogate escapes, and numbers a
// float64 can hold (a 14-byte 1e-16383 is 16 KB of jsonb, and 1e999999 is
// refused by it). It checks the bytes without decoding them into values:
// an import checks a million of these, and PostgreSQL parses them again.
func ValidateAttributes(field string, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) > MaxAttributesBytes {
		return nil, invalid.Fieldf(field, "is larger than %d bytes", MaxAttributesBytes)
	}
	// encoding/json would take invalid UTF-8 (as U+FFFD); the raw bytes go
	// to jsonb, which refuses them.
	if !utf8.Valid(raw) {
		return nil, invalid.Field(field, "must be valid UTF-8")
	}
	if !json.Valid(raw) || bytes.TrimLeft(raw, " \t\r\n")[0] != '{' {
		return nil, invalid.Field(field, "must be a JSON object")
	}
	depth, problem := scanJSON(raw)
	if problem != "" {
		return nil, invalid.Field(field, problem)
	}
	if depth > 8 {
		return nil, invalid.Field(field, "is nested more than 8 levels deep")
	}
	return raw, nil
}

// scanJSON walks valid JSON once: it returns how deeply objects and arrays
// nest (1 for an object of scalars) and what jsonb would refuse or blow up.
func scanJSON(raw []byte) (depth int, problem string) {
	level := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			end, p := scanString(raw, i+1)
			if p != "" {
				return 0, p
			}
			i = end
		case c == '{' || c == '[':
			level++
			depth = max(depth, level)
		case c == '}' || c == ']':
			level--
		case c == '-' || c >= '0' && c <= '9':
			j := i
			for j < len(raw) && strings.IndexByte("+-.0123456789eE", raw[j]) >= 0 {
				j++
			}
			if !float64Range(string(raw[i:j])) {
				return 0, "holds a number out of range"
			}
			i = j - 1
		}
	}
	return depth, ""
}

// scanString checks the string starting at raw[i] (after its quote) and
// returns the index of its closing quote.
func scanString(raw []byte, i int) (end int, problem string) {
	for ; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			return i, ""
		case '\\':
			if raw[i+1] != 'u' {
				i++
				continue
			}
			r, _ := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
			switch {
			case r == 0:
				return 0, "must not contain NUL characters"
			case r >= 0xDC00 && r <= 0xDFFF:
				return 0, "holds an unpaired surrogate escape"
			case r >= 0xD800 && r <= 0xDBFF:
				if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
					return 0, "holds an unpaired surrogate escape"
				}
				lo, _ := strconv.ParseUint(string(raw[i+8:i+12]), 16, 16)
				if lo < 0xDC00 || lo > 0xDFFF {
					return 0, "holds an unpaired surrogate escape"
				}
				i += 6
			}
			i += 5
		}
	}
	return i, ""
}

// float64Range says whether a JSON number is within what a float64 holds:
// not beyond its largest value, and not so small a non-zero that it would
// be zero.
func float64Range(n string) bool {
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return false
	}
	if f != 0 {
		return true
	}
	mantissa, _, _ := strings.Cut(strings.ToLower(n), "e")
	return strings.Trim(mantissa, "-+0.") == ""
}

// ValidateText bounds free text such as names and descriptions.
func ValidateText(field, s string, maxLen int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid.Field(field, "is required")
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return invalid.Field(field, "must be valid UTF-8 text")
	}
	if utf8.RuneCountInString(s) > maxLen {
		return invalid.Fieldf(field, "is longer than %d characters", maxLen)
	}
	return nil
}
