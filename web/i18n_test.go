package web

import (
	"strings"
	"testing"
)

// TestEveryMessageIsTranslated keeps the languages in step: every key in
// every language, none empty, and the same format verbs in each.
func TestEveryMessageIsTranslated(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		for key, en := range messages["en"] {
			got, ok := messages[lang][key]
			if !ok || got == "" {
				t.Errorf("%s: %s is missing", lang, key)
				continue
			}
			if strings.Count(got, "%") != strings.Count(en, "%") {
				t.Errorf("%s: %s has other format verbs than English: %q", lang, key, got)
			}
		}
		for key := range messages[lang] {
			if _, ok := messages["en"][key]; !ok {
				t.Errorf("%s: %s is not in English", lang, key)
			}
		}
	}
}
