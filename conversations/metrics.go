package conversations

import "github.com/prometheus/client_golang/prometheus"

// metrics are the service's Prometheus counters.
type metrics struct {
	inbound  prometheus.Counter
	outbound prometheus.Counter
	pushes   *prometheus.CounterVec
	keywords *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

func newMetrics() metrics {
	return metrics{
		inbound: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_conversation_messages_received_total",
			Help: "Messages subscribers sent (taps and quick replies included), once each."}),
		outbound: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_conversation_messages_sent_total",
			Help: "Replies, notes and transactional messages staff and systems wrote."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_conversation_pushes_total",
			Help: "Pushes of conversation and transactional messages, by outcome class."}, []string{"class"}),
		keywords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_conversation_keywords_total",
			Help: "Keywords answered automatically, by kind."}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_conversation_errors_total",
			Help: "Errors handled by logging them, by operation."}, []string{"operation"}),
	}
}

// Collectors are the service's metrics, for a Prometheus registry.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.inbound, s.metrics.outbound, s.metrics.pushes, s.metrics.keywords, s.metrics.errors}
}
