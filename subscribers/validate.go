package subscribers

import (
	"bytes"
	"encoding/json"
	"net/mail"
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
// nested at most 8 levels, in valid UTF-8 and without NUL characters.
// It checks the bytes as they are, without decoding them into values: an
// import checks a million of these, and PostgreSQL parses them once more.
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
	if nesting(raw) > 8 {
		return nil, invalid.Field(field, "is nested more than 8 levels deep")
	}
	// PostgreSQL jsonb refuses \u0000, which JSON allows.
	if bytes.Contains(raw, []byte(`\u0000`)) {
		return nil, invalid.Field(field, "must not contain NUL characters")
	}
	return raw, nil
}

// nesting is how deeply objects and arrays nest in valid JSON: 1 for an
// object of scalars.
func nesting(raw []byte) int {
	level, deepest, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			level++
			deepest = max(deepest, level)
		case c == '}' || c == ']':
			level--
		}
	}
	return deepest
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
