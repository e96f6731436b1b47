package lease

import (
	"strconv"
	"strings"
)

// maxHostnameLength bounds the hostname part of a derived id, leaving room
// for a slot suffix.
const maxHostnameLength = 60

// SanitizeHostname turns a hostname into the base of a worker id: lower case
// letters, digits and single hyphens, at most 60 characters ("herald" when
// nothing is left).
func SanitizeHostname(hostname string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(hostname) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			hyphen = false
			continue
		}
		if !hyphen && b.Len() > 0 {
			b.WriteByte('-')
			hyphen = true
		}
	}
	s := b.String()
	if len(s) > maxHostnameLength {
		s = s[:maxHostnameLength]
	}
	s = strings.TrimRight(s, "-")
	if s == "" {
		return "herald"
	}
	return s
}

// slotIDs is the ids a hostname yields, lowest slot first.
func slotIDs(hostname string) []string {
	base := SanitizeHostname(hostname)
	ids := make([]string, 0, MaxSlots)
	ids = append(ids, base)
	for i := 2; i <= MaxSlots; i++ {
		ids = append(ids, base+"-"+strconv.Itoa(i))
	}
	return ids
}
