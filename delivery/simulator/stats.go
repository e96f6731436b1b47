package simulator

import (
	"encoding/json"
	"net/http"
)

// stats reports counters, for people watching `make run` and for tests that
// run Herald as a separate process.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	devices := len(s.received)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int64{
		"requests": s.total.Load(), "delivered": s.delivered.Load(), "devices_reached": int64(devices),
		"first_delivery_unix_nano": s.first.Load(),
	})
}

// reset is Reset over HTTP, for benchmarks driving a simulator process.
func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// receivedHTTP lists what one device received: ?platform=apns&token=...
func (s *Server) receivedHTTP(w http.ResponseWriter, r *http.Request) {
	got := s.Received(r.URL.Query().Get("platform"), r.URL.Query().Get("token"))
	type item struct {
		At      string          `json:"at"`
		Payload json.RawMessage `json:"payload"`
	}
	out := make([]item, 0, len(got))
	for _, g := range got {
		p := g.Payload
		if !json.Valid(p) {
			p, _ = json.Marshal(string(p))
		}
		out = append(out, item{At: g.At.UTC().Format("2006-01-02T15:04:05.000Z"), Payload: p})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
