package brand

import (
	"bytes"
	"testing"
)

func TestBrand(t *testing.T) {
	t.Parallel()

	t.Run("Colors", func(t *testing.T) {
		t.Parallel()
		for c, ok := range map[string]bool{
			"": true, "#2457d6": true, "#000000": true, "#b00020": true, "#767676": true,
			"#777777": false, "#ffffff": false, "#ffcc00": false, "#2457D6": false, "2457d6": false, "#2457d": false,
			"#2457d6 ": false, "red": false, "#gggggg": false, "#2457d6\x00": false,
		} {
			if err := ValidateColor("accent_color", c); (err == nil) != ok {
				t.Errorf("%q: %v, want ok %v", c, err, ok)
			}
		}
	})

	t.Run("Links", func(t *testing.T) {
		t.Parallel()
		for link, ok := range map[string]bool{
			"": true, "https://shop.example.com/datenschutz": true, "http://example.com/impressum": true,
			"javascript:alert(1)": false, "data:text/html,x": false, "//example.com/x": false, "https://u:p@example.com/": false,
			"ftp://example.com/": false, "https://": false, "https://example.com/\n": false, "https://example.com/\xff": false,
			"https://example.com/" + string(bytes.Repeat([]byte("a"), 500)): false,
		} {
			if err := ValidateLink("privacy_url", link); (err == nil) != ok {
				t.Errorf("%q: %v, want ok %v", link, err, ok)
			}
		}
	})

	t.Run("LogoTypes", func(t *testing.T) {
		t.Parallel()
		png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 32)...)
		jpeg := append([]byte("\xff\xd8\xff\xe0"), make([]byte, 32)...)
		webp := append([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), make([]byte, 32)...)
		for name, tt := range map[string]struct {
			data []byte
			want string
		}{
			"png": {png, "image/png"}, "jpeg": {jpeg, "image/jpeg"}, "webp": {webp, "image/webp"},
			"svg":   {[]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), ""},
			"html":  {[]byte(`<!doctype html><p>hi`), ""},
			"empty": {nil, ""},
			"huge":  {append(png, make([]byte, MaxLogoBytes)...), ""},
		} {
			got, err := LogoType("logo", tt.data)
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Errorf("%s: %q %v, want %q", name, got, err, tt.want)
			}
		}
	})
}
