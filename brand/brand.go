// Package brand checks what the pages subscribers see show of who sends to
// them: a company's name, the links to its privacy policy and imprint, its
// logo and its colour (see apps.Branding, and a list's colour).
package brand

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/herald-im/herald/invalid"
)

// MaxLogoBytes bounds an uploaded logo.
const MaxLogoBytes = 256 << 10

// LogoTypes are the image types a logo may have, as read from its bytes.
// SVG is not among them: it can carry script.
var LogoTypes = []string{"image/png", "image/jpeg", "image/webp"}

var colorRE = regexp.MustCompile(`^#[0-9a-f]{6}$`)

// ValidateColor accepts "" (Herald's own colour) or #rrggbb in lowercase
// that white text on it reads at a contrast of at least 4.5:1 (WCAG AA): the
// colour fills the pages' buttons.
func ValidateColor(field, c string) error {
	if c == "" {
		return nil
	}
	if !colorRE.MatchString(c) {
		return invalid.Field(field, "must be a colour as #rrggbb (lowercase hex)")
	}
	if r := contrastWithWhite(c); r < 4.5 {
		return invalid.Fieldf(field, "is too light for white text on it (contrast %.1f:1, at least 4.5:1 is needed)", r)
	}
	return nil
}

// contrastWithWhite is the WCAG 2 contrast ratio of white against c.
func contrastWithWhite(c string) float64 {
	lum := 0.0
	for i, weight := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(c[1+2*i:3+2*i], 16, 8)
		s := float64(v) / 255
		if s <= 0.04045 {
			s /= 12.92
		} else {
			s = math.Pow((s+0.055)/1.055, 2.4)
		}
		lum += weight * s
	}
	return 1.05 / (lum + 0.05)
}

// ValidateLink accepts "" or an absolute http(s) URL without credentials,
// of at most 500 bytes: a link the pages show.
func ValidateLink(field, link string) error {
	if link == "" {
		return nil
	}
	if len(link) > 500 || !utf8.ValidString(link) || strings.IndexFunc(link, unicode.IsControl) >= 0 {
		return invalid.Field(field, "must be a URL of at most 500 bytes")
	}
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return invalid.Field(field, "must be an http or https URL without a user or password")
	}
	return nil
}

// LogoType reads a logo's type from its bytes: one of LogoTypes, or an
// error that says what is accepted.
func LogoType(field string, data []byte) (string, error) {
	if len(data) == 0 {
		return "", invalid.Field(field, "is empty: send the image's bytes as the body")
	}
	if len(data) > MaxLogoBytes {
		return "", invalid.Fieldf(field, "is larger than %d KiB", MaxLogoBytes>>10)
	}
	t := http.DetectContentType(data)
	for _, ok := range LogoTypes {
		if t == ok {
			return t, nil
		}
	}
	return "", invalid.Field(field, fmt.Sprintf("must be a PNG, JPEG or WebP image (this is %s)", t))
}

// ValidateName accepts a name the pages show (a company's, an app's): valid
// UTF-8 without control characters, at most 200 characters, and not only
// space when required.
func ValidateName(field, name string, required bool) error {
	if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return invalid.Field(field, "must be text without control characters")
	}
	if utf8.RuneCountInString(name) > 200 {
		return invalid.Field(field, "must be at most 200 characters")
	}
	if required && strings.TrimSpace(name) == "" {
		return invalid.Field(field, "is required")
	}
	return nil
}
