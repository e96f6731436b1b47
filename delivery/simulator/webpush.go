package simulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-im/herald/delivery"
)

var topicRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// webPush answers POST /wp/{id} like a browser vendor's push service.
func (s *Server) webPush(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	s.mu.Lock()
	sub := s.webpush[r.PathValue("id")]
	s.mu.Unlock()
	if sub == nil {
		sub, _ = s.derive(r.PathValue("id"))
	}
	endpoint := s.URL + r.URL.Path
	if sub == nil {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	if status, reason := s.checkVAPID(r.Header.Get("Authorization"), sub); status != 0 {
		http.Error(w, reason, status)
		return
	}
	if _, err := strconv.Atoi(r.Header.Get("TTL")); err != nil {
		http.Error(w, "TTL header is required (RFC 8030 5.2)", http.StatusBadRequest)
		return
	}
	switch r.Header.Get("Urgency") {
	case "", "very-low", "low", "normal", "high":
	default:
		http.Error(w, "bad Urgency", http.StatusBadRequest)
		return
	}
	if t := r.Header.Get("Topic"); t != "" && !topicRE.MatchString(t) {
		http.Error(w, "Topic must be at most 32 base64url characters", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" {
		http.Error(w, "Content-Encoding must be aes128gcm", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, delivery.WebPushMaxBody+1))
	if err != nil {
		return
	}
	if len(body) > delivery.WebPushMaxBody {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	plaintext, err := delivery.DecryptWebPush(body, sub.private, sub.auth)
	if err != nil {
		http.Error(w, "cannot decrypt: "+err.Error(), http.StatusBadRequest)
		return
	}
	accept := func() { s.record("webpush", endpoint, plaintext, r.Header.Clone()) }
	if s.applyFault(w, r, s.takeFault("webpush", endpoint), func(f *Fault) { http.Error(w, f.Reason, f.Status) }, accept) {
		return
	}
	accept()
	w.Header().Set("Location", s.URL+"/m/"+newUUID())
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID verifies "vapid t=JWT, k=KEY" (RFC 8292): an ES256 JWT signed by
// k, audience this service's origin, expiring within 24 hours, with a subject.
func (s *Server) checkVAPID(authz string, sub *subscription) (int, string) {
	rest, ok := strings.CutPrefix(authz, "vapid ")
	if !ok {
		return http.StatusUnauthorized, "missing vapid authorization"
	}
	var t, k string
	for _, part := range strings.Split(rest, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "t":
			t = value
		case "k":
			k = value
		}
	}
	if sub.appServerKey != "" && strings.TrimRight(sub.appServerKey, "=") != strings.TrimRight(k, "=") {
		return http.StatusForbidden, "vapid key does not match the subscription's applicationServerKey"
	}
	now := s.now()
	if _, ok := s.verified.get("vapid:"+k+":"+t, now); ok {
		return 0, ""
	}
	keyBytes, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k, "="))
	if err != nil {
		return http.StatusUnauthorized, "vapid k is not base64url"
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), keyBytes)
	if err != nil {
		return http.StatusUnauthorized, "vapid k is not a P-256 key"
	}
	u, _ := url.Parse(s.URL)
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(t, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(u.Scheme+"://"+u.Host),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	if err != nil {
		return http.StatusUnauthorized, "invalid vapid jwt: " + err.Error()
	}
	exp, _ := claims.GetExpirationTime()
	if exp.Sub(s.now()) > 24*time.Hour {
		return http.StatusUnauthorized, "vapid jwt expires more than 24h ahead"
	}
	if subj, _ := claims["sub"].(string); subj == "" {
		return http.StatusUnauthorized, "vapid jwt has no sub"
	}
	s.verified.put("vapid:"+k+":"+t, "", exp.Time)
	return 0, ""
}
