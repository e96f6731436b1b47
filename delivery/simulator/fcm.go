package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// fcm answers POST /v1/projects/{project}/messages:send like FCM HTTP v1.
func (s *Server) fcm(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	if r.Header.Get("Authorization") != "Bearer "+s.FCMAccessToken {
		fcmError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "", "Request had invalid authentication credentials.")
		return
	}
	if r.PathValue("project") != s.FCMProject {
		fcmError(w, http.StatusForbidden, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "Permission denied for project.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	var req struct {
		ValidateOnly bool `json:"validate_only"`
		Message      struct {
			Token        string          `json:"token"`
			Topic        string          `json:"topic"`
			Condition    string          `json:"condition"`
			Notification json.RawMessage `json:"notification"`
			Data         map[string]any  `json:"data"`
			Android      *struct {
				TTL      string `json:"ttl"`
				Priority string `json:"priority"`
			} `json:"android"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	m := req.Message
	targets := 0
	for _, t := range []string{m.Token, m.Topic, m.Condition} {
		if t != "" {
			targets++
		}
	}
	if targets != 1 {
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Exactly one of token, topic or condition must be set.")
		return
	}
	for k, v := range m.Data {
		if _, ok := v.(string); !ok {
			fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", fmt.Sprintf("Invalid value at 'message.data[%s]': must be a string", k))
			return
		}
	}
	if a := m.Android; a != nil {
		if a.Priority != "" && a.Priority != "normal" && a.Priority != "high" && a.Priority != "NORMAL" && a.Priority != "HIGH" {
			fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid android priority.")
			return
		}
		if a.TTL != "" && !strings.HasSuffix(a.TTL, "s") {
			fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid android ttl.")
			return
		}
	}
	if len(body) > 4096+512 { // FCM's 4 KB payload limit plus the envelope
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Message is too big.")
		return
	}
	if m.Token != "" && (len(m.Token) > 4096 || strings.ContainsAny(m.Token, " \t\n")) {
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")
		return
	}
	accept := func() {
		if !req.ValidateOnly {
			s.record("fcm", m.Token, body, r.Header.Clone())
		}
	}
	if s.applyFault(w, r, s.takeFault("fcm", m.Token), func(f *Fault) {
		fcmError(w, f.Status, fcmStatus(f.Status), f.Reason, "injected fault")
	}, accept) {
		return
	}
	accept()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"name":"projects/%s/messages/%d"}`, s.FCMProject, s.total.Load())
}

func fcmStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	default:
		return "INTERNAL"
	}
}

// fcmError writes Google's error envelope with an FcmError detail, which is
// what the SDK's IsUnregistered and friends look at.
func fcmError(w http.ResponseWriter, code int, status, fcmCode, message string) {
	if fcmCode == "" {
		fcmCode = status
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": message, "status": status,
		"details": []any{map[string]any{
			"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode,
		}},
	}})
}
