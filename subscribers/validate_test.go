package subscribers_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-im/herald/subscribers"
)

func TestValidateTimezone(t *testing.T) {
	t.Parallel()
	for tz, ok := range map[string]bool{
		"Europe/Berlin": true, "America/Argentina/Buenos_Aires": true, "UTC": true, "Etc/GMT+5": true, "": true,
		"Factory": false, "posixrules": false, "right/UTC": false, "posix/Europe/Berlin": false, "localtime": false,
		"SystemV/EST5": false, "Local": false, "../etc/passwd": false, "/etc/localtime": false, "Europe/Nowhere": false,
		"Europe/Berlin ": false, "Europe\\Berlin": false,
	} {
		if err := subscribers.ValidateTimezone("timezone", tz); (err == nil) != ok {
			t.Errorf("%q: %v, want ok %v", tz, err, ok)
		}
	}
}

func TestValidateAttributes(t *testing.T) {
	t.Parallel()
	nested := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	for raw, ok := range map[string]bool{
		``: true, `{}`: true, `{"plan":"p1"}`: true, " \n{\"a\": [1, {\"b\": null}]}\t": true,
		nested(8): true, nested(9): false, `{"a":[[[[[[[1]]]]]]]}`: true, `{"a":[[[[[[[[1]]]]]]]]}`: false,
		`{"a":"[[[[[[[[[[{{{{{{"}`: true, `{"a":"\"{{{{{{{{{{"}`: true, `{"a":"\\"}`: true,
		`null`: false, `[]`: false, `"x"`: false, `1`: false, `{"a":1}x`: false, `{"a":1`: false, `{'a':1}`: false,
		`{"a":"\u0000"}`: false, "{\"a\":\"\xff\"}": false, "{\"a\":\"\x00\"}": false,
		`{"a":"` + strings.Repeat("x", subscribers.MaxAttributesBytes) + `"}`: false,
	} {
		if _, err := subscribers.ValidateAttributes("attributes", json.RawMessage(raw)); (err == nil) != ok {
			t.Errorf("%.60q: %v, want ok %v", raw, err, ok)
		}
	}
}

// FuzzValidateAttributes holds the byte-level checks to what decoding the
// value says: what is accepted decodes as an object nested at most 8 deep,
// and every such object in valid UTF-8 without NUL is accepted.
func FuzzValidateAttributes(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":{"b":[1,2,{"c":"d"}]}}`, `{"a":"\\\"{"}`, `[{}]`, `{"a":"\u0000"}`, "{\"\xff\":1}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) == 0 || len(raw) > subscribers.MaxAttributesBytes {
			return
		}
		_, err := subscribers.ValidateAttributes("attributes", json.RawMessage(raw))
		var obj map[string]any
		decodes := json.Unmarshal([]byte(raw), &obj) == nil && obj != nil
		want := decodes && utf8.ValidString(raw) && !strings.Contains(raw, `\u0000`) && depthOf(obj) <= 8
		if (err == nil) != want {
			t.Fatalf("%q: %v, want ok %v", raw, err, want)
		}
	})
}

func depthOf(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	}
	return 0
}
