package invalid_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-im/herald/invalid"
)

func TestTruncate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		s        string
		maxBytes int
		want     string
	}{
		{"Short", "Mozilla/5.0", 512, "Mozilla/5.0"},
		{"Exact", "abc", 3, "abc"},
		{"ASCIICut", "abcdef", 4, "abcd"},
		{"Empty", "", 10, ""},
		{"Zero", "abc", 0, ""},
		{"Negative", "abc", -1, ""},
		{"TwoByteRuneNotSplit", "abé", 3, "ab"}, // é is 2 bytes: a b 0xC3 | 0xA9
		{"TwoByteRuneFits", "abé", 4, "abé"},
		{"ThreeByteRuneNotSplit", "x€", 3, "x"}, // € is 3 bytes
		{"FourByteRuneNotSplit", "🙂🙂", 7, "🙂"},  // 🙂 is 4 bytes
		{"CutJustBeforeRune", "ab€", 2, "ab"},
		{"InvalidBytesReplaced", "a\xffb", 10, "a\uFFFDb"},
		{"InvalidRunReplacedOnce", "a\xff\xfeb", 10, "a\uFFFDb"},
		{"TruncatedSequenceReplaced", "ab\xc3", 10, "ab\uFFFD"},
		// The replacement is 3 bytes; the cut still lands on a boundary.
		{"ReplacementNotSplit", "ab\xff", 4, "ab"},
		{"ReplacementAndCut", "\xffabc", 4, "\uFFFDa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := invalid.Truncate(tt.s, tt.maxBytes)
			if got != tt.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.s, tt.maxBytes, got, tt.want)
			}
			if !utf8.ValidString(got) || len(got) > max(tt.maxBytes, 0) {
				t.Fatalf("Truncate(%q, %d) = %q: %d bytes, valid %v", tt.s, tt.maxBytes, got, len(got), utf8.ValidString(got))
			}
		})
	}

	t.Run("EveryCutOfMixedText", func(t *testing.T) {
		t.Parallel()
		s := strings.Repeat("aé€🙂\xff", 20)
		valid := strings.ToValidUTF8(s, "\uFFFD")
		for n := 0; n <= len(valid)+1; n++ {
			got := invalid.Truncate(s, n)
			// A cut loses at most the 3 bytes of a character it did not split.
			if !utf8.ValidString(got) || !strings.HasPrefix(valid, got) || len(got) > n || len(got) < min(n, len(valid))-3 {
				t.Fatalf("Truncate(…, %d) = %d bytes, valid %v", n, len(got), utf8.ValidString(got))
			}
		}
	})
}
