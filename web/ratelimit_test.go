package web

import (
	"testing"
	"time"
)

func TestLimiterWindows(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.allow("ip:192.0.2.1"); !ok {
			t.Fatalf("request %d refused", i+1)
		}
	}
	ok, wait := l.allow("ip:192.0.2.1")
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("4th request: ok %v wait %v", ok, wait)
	}
	if ok, _ := l.allow("ip:192.0.2.2"); !ok {
		t.Fatal("another address was limited")
	}
	now = now.Add(61 * time.Second)
	if ok, _ := l.allow("ip:192.0.2.1"); !ok {
		t.Fatal("a new window did not reset the count")
	}
	if len(l.counts) != 1 {
		t.Fatalf("expired windows kept: %d", len(l.counts))
	}
}
