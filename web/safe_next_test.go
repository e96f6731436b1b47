package web

import "testing"

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for next, want := range map[string]string{
		"/console#/campaigns": "/console#/campaigns", "/account": "/account", "/console/river/": "/console/river/",
		"//evil.example": "/account", "/\\evil.example": "/account", "/\t/evil.example": "/account",
		"/\n/evil.example": "/account", "/\r/evil.example": "/account", "/ /evil.example": "/account",
		"/\x7f/evil.example": "/account", "https://evil.example": "/account", "": "/account",
		"/sign-in?next=/x": "/account", "/access/abc": "/account",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
