package subscribers_test

import (
	"testing"

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
