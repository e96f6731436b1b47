package simulator

import (
	"sync"
	"time"
)

// tokenCache remembers tokens whose signature was verified, until they
// expire, as Apple and the browsers' push services do: a sender that reuses
// its JWT (RFC 8292 recommends it) is not made to pay for a signature check
// on every request, and one that signs a new token every time still is.
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]cachedToken
}

type cachedToken struct {
	expires time.Time
	// verdict is what the request gets: "" for valid, else the reason.
	verdict string
}

const tokenCacheMax = 10_000

func (c *tokenCache) get(token string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[token]
	if !ok || !now.Before(e.expires) {
		return "", false
	}
	return e.verdict, true
}

func (c *tokenCache) put(token string, verdict string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= tokenCacheMax {
		c.entries = map[string]cachedToken{} // start over rather than grow
	}
	c.entries[token] = cachedToken{expires: expires, verdict: verdict}
}
