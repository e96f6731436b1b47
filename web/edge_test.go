package web

import (
	"strings"
	"testing"
)

func TestJSONTextProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, field, reason string
	}{
		{"Clean", `{"a":"text","b":[1,"two",{"c":null}],"d":true}`, "", ""},
		{"EmojiAndPair", `{"a":"😀 \ud83d\ude00 \u00e9 \n \" \\"}`, "", ""},
		{"EscapedNUL", `{"device":{"token":"a\u0000b"}}`, "device.token", "NUL"},
		{"RawNUL", "{\"device\":{\"token\":\"a\x00b\"}}", "device.token", "NUL"},
		{"InvalidUTF8", "{\"email\":\"\xff\"}", "email", "UTF-8"},
		{"Overlong", "{\"email\":\"\xc0\x80\"}", "email", "UTF-8"},
		{"EncodedSurrogate", "{\"email\":\"\xed\xa0\x80\"}", "email", "UTF-8"},
		{"LoneHigh", `{"a":"\ud800"}`, "a", "high surrogate"},
		{"HighThenEscape", `{"a":"\ud800\n"}`, "a", "high surrogate"},
		{"HighThenHigh", `{"a":"\ud800\ud800"}`, "a", "high surrogate"},
		{"LoneLow", `{"a":"x\udc00"}`, "a", "low surrogate"},
		{"InArray", `{"content":{"actions":[{"label":"ok"},{"label":"\u0000"}]}}`, "content.actions[1].label", "NUL"},
		{"TopLevelArray", `["ok","\u0000"]`, "body[1]", "NUL"},
		{"TopLevelString", `"\u0000"`, "body", "NUL"},
		{"MemberName", `{"attributes":{"a\u0000":1}}`, "attributes", "member name"},
		{"EscapedMemberName", `{"a\"b":{"c":"\u0000"}}`, `a"b.c`, "NUL"},
		{"AfterNumbers", `{"n":-1.5e3,"m":[0,1],"s":"\udfff"}`, "s", "low surrogate"},
		// Not JSON: the decoder says what is wrong.
		{"Unterminated", `{"a":"\u00`, "", ""},
		{"Garbage", `{"a" "\u0000"}`, "", ""},
		{"Deep", strings.Repeat("[", 20000) + `"\u0000"` + strings.Repeat("]", 20000), "", ""},
	}
	for _, tt := range tests {
		field, reason, bad := jsonTextProblem([]byte(tt.body))
		if bad != (tt.field != "") || field != tt.field || !strings.Contains(reason, tt.reason) {
			t.Errorf("%s: %q %q %v", tt.name, field, reason, bad)
		}
	}
}
