package simulator

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// apns answers POST /3/device/{token} the way api.push.apple.com does.
func (s *Server) apns(sandboxHost bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.total.Add(1)
		token := r.PathValue("token")
		fail := func(status int, reason string) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("apns-id", r.Header.Get("apns-id"))
			w.WriteHeader(status)
			body := map[string]any{"reason": reason}
			if status == http.StatusGone {
				body["timestamp"] = s.now().UnixMilli()
			}
			json.NewEncoder(w).Encode(body)
		}
		if r.ProtoMajor != 2 {
			http.Error(w, "APNs requires HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		if reason := s.checkProviderToken(r.Header.Get("authorization")); reason != "" {
			fail(http.StatusForbidden, reason)
			return
		}
		if r.Header.Get("apns-topic") == "" {
			fail(http.StatusBadRequest, "MissingTopic")
			return
		}
		switch r.Header.Get("apns-push-type") {
		case "alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity", "location", "pushtotalk":
		default:
			fail(http.StatusBadRequest, "InvalidPushType")
			return
		}
		if p := r.Header.Get("apns-priority"); p != "" && p != "5" && p != "10" && p != "1" {
			fail(http.StatusBadRequest, "BadPriority")
			return
		}
		if e := r.Header.Get("apns-expiration"); e != "" {
			if _, err := strconv.ParseInt(e, 10, 64); err != nil {
				fail(http.StatusBadRequest, "BadExpirationDate")
				return
			}
		}
		if len(r.Header.Get("apns-collapse-id")) > 64 {
			fail(http.StatusBadRequest, "BadCollapseId")
			return
		}
		if _, err := hex.DecodeString(token); err != nil || len(token) < 64 {
			fail(http.StatusBadRequest, "BadDeviceToken")
			return
		}
		s.mu.Lock()
		isSandboxToken := s.sandbox[token]
		s.mu.Unlock()
		if isSandboxToken != sandboxHost {
			fail(http.StatusBadRequest, "BadDeviceToken")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
		if err != nil {
			return
		}
		if len(body) > 4096 {
			fail(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
			return
		}
		var payload struct {
			APS json.RawMessage `json:"aps"`
		}
		if json.Unmarshal(body, &payload) != nil || len(payload.APS) == 0 {
			fail(http.StatusBadRequest, "PayloadEmpty")
			return
		}
		accept := func() { s.record("apns", token, body, r.Header.Clone()) }
		if s.applyFault(w, r, s.takeFault("apns", token), func(f *Fault) { fail(f.Status, f.Reason) }, accept) {
			return
		}
		id := r.Header.Get("apns-id")
		if id == "" {
			id = newUUID()
		}
		accept()
		w.Header().Set("apns-id", id)
		w.WriteHeader(http.StatusOK)
	}
}

// checkProviderToken validates an APNs provider JWT: ES256, a known key id,
// the key's team as issuer, and issued within the last hour.
func (s *Server) checkProviderToken(authz string) string {
	raw, ok := strings.CutPrefix(authz, "bearer ")
	if !ok || raw == "" {
		return "MissingProviderToken"
	}
	now := s.now()
	if verdict, ok := s.verified.get("apns:"+raw, now); ok {
		return verdict
	}
	var iss string
	var iat time.Time
	_, err := jwt.Parse(raw, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		s.mu.Lock()
		k, ok := s.apnsKeys[kid]
		s.mu.Unlock()
		if !ok {
			return nil, errors.New("unknown key id")
		}
		claims, _ := t.Claims.(jwt.MapClaims)
		iss, _ = claims["iss"].(string)
		if iss != k.teamID {
			return nil, errors.New("issuer is not the key's team")
		}
		if f, ok := claims["iat"].(float64); ok {
			iat = time.Unix(int64(f), 0)
		}
		return k.pub, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return "InvalidProviderToken" // not cached: the key may be trusted later
	}
	if iat.IsZero() || now.Sub(iat) > time.Hour {
		return "ExpiredProviderToken"
	}
	// Apple accepts a provider token for an hour after it was issued.
	s.verified.put("apns:"+raw, "", iat.Add(time.Hour))
	return ""
}

func newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return strings.ToUpper(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}
