package subscribers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-im/herald/database/dbtest"
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
		// What jsonb refuses, or swells: NUL, unpaired surrogates, numbers
		// beyond a float64.
		`{"a":"\u0000"}`: false, `{"a":"\\u0000"}`: true, "{\"a\":\"\xff\"}": false, "{\"a\":\"\x00\"}": false,
		`{"a":"\ud83d\ude00"}`: true, `{"a":"\ud800"}`: false, `{"a":"\udc00"}`: false, `{"a":"\ud800\u0041"}`: false,
		`{"a":"\ud800x"}`: false, `{"\udc00":1}`: false,
		`{"a":1.5e308}`: true, `{"a":-2.5e-300}`: true, `{"a":0e-999999}`: true, `{"a":-0.0}`: true, `{"a":[1,-2,3e2]}`: true,
		`{"a":1e309}`: false, `{"a":1e999999}`: false, `{"a":1e-400}`: false, `{"a":[1,1e-16383]}`: false,
		`{"a":"` + strings.Repeat("x", subscribers.MaxAttributesBytes) + `"}`: false,
	} {
		if _, err := subscribers.ValidateAttributes("attributes", json.RawMessage(raw)); (err == nil) != ok {
			t.Errorf("%.60q: %v, want ok %v", raw, err, ok)
		}
	}
}

// FuzzValidateAttributes holds the byte-level checks to what decoding says
// and to what PostgreSQL's jsonb takes: what is accepted decodes as an
// object nested at most 8 deep and is taken by jsonb; an object without
// escapes or numbers in valid UTF-8 and within the depth is accepted.
func FuzzValidateAttributes(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":{"b":[1,2,{"c":"d"}]}}`, `{"a":"\\\"{"}`, `[{}]`, `{"a":"\u0000"}`, "{\"\xff\":1}",
		`{"a":"\ud800"}`, `{"a":1e-400}`, `{"a":-1.5E+3}`} {
		f.Add(s)
	}
	pool := dbtest.Pool(f)
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) == 0 || len(raw) > subscribers.MaxAttributesBytes {
			return
		}
		_, err := subscribers.ValidateAttributes("attributes", json.RawMessage(raw))
		var obj map[string]any
		decodes := json.Unmarshal([]byte(raw), &obj) == nil && obj != nil && utf8.ValidString(raw) && depthOf(obj) <= 8
		if err == nil {
			if !decodes {
				t.Fatalf("%q accepted, but it is no object within 8 levels", raw)
			}
			var n int
			if qerr := pool.QueryRow(context.Background(), `SELECT length($1::jsonb::text)`, raw).Scan(&n); qerr != nil {
				t.Fatalf("%q accepted, but jsonb refuses it: %v", raw, qerr)
			}
			return
		}
		if decodes && !strings.ContainsAny(raw, `\0123456789`) {
			t.Fatalf("%q refused: %v", raw, err)
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
