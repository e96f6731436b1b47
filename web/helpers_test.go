package web_test

import (
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/herald-im/herald/delivery/simulator"
)

func simFault404() simulator.Fault { return simulator.Fault{Status: 404, Reason: "UNREGISTERED"} }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decodeStd(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

func ftoa(f float64) string { return strconv.FormatInt(int64(f), 10) }
