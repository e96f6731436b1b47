package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-im/herald/audit"
)

// Message is what a stream receives: a stored event (with a Position, to
// resume from) or a passing signal such as typing (Position zero).
type Message struct {
	Event *audit.Event
	// Signal is a passing signal's JSON payload, for Topic.
	Signal json.RawMessage
	Topic  string
	// Meta is what a filter decoded from the payload, kept so that an event
	// is decoded once however many streams look at it. Filters run one
	// after another on the hub's goroutine; streams only read it.
	Meta any
}

// Filter decides whether a stream receives a message.
type Filter func(m *Message) bool

// Config holds a Hub's settings.
type Config struct {
	// Channels are the passing-signal channels to listen on besides the
	// outbox's (conversations.PresenceChannel).
	Channels []string
	// PollInterval is how often the outbox is read without a
	// notification; 0 means one second.
	PollInterval time.Duration
	// Buffer is how many messages a stream may fall behind before it is
	// closed (its client reconnects and resumes); 0 means 1024.
	Buffer int
}

// Hub fans committed events out to the streams of one process.
type Hub struct {
	pool   *pgxpool.Pool
	cfg    Config
	logger *slog.Logger

	mu      sync.Mutex
	pos     audit.Position
	ready   chan struct{}
	streams map[*Stream]struct{}

	delivered prometheus.Counter
	dropped   prometheus.Counter
	gauge     prometheus.GaugeFunc
}

// NewHub returns a Hub that reads from pool. Run must be running for
// streams to receive anything.
func NewHub(pool *pgxpool.Pool, cfg Config, logger *slog.Logger) *Hub {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1024
	}
	h := &Hub{pool: pool, cfg: cfg, logger: logger, ready: make(chan struct{}), streams: map[*Stream]struct{}{},
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_live_messages_total",
			Help: "Events and signals written to live streams."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_live_streams_overrun_total",
			Help: "Live streams closed because their client fell too far behind (it resumes on reconnect)."}),
	}
	h.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_live_streams",
		Help: "Live streams open in this process."}, func() float64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return float64(len(h.streams))
	})
	return h
}

// Collectors are the Hub's metrics.
func (h *Hub) Collectors() []prometheus.Collector {
	return []prometheus.Collector{h.delivered, h.dropped, h.gauge}
}

// Stream is one live view's subscription.
type Stream struct {
	// C receives the stream's messages. It is closed when the stream
	// overran its buffer or the hub stopped.
	C      chan *Message
	filter Filter
	hub    *Hub
	closed bool
}

// Subscribe opens a stream. It returns the position up to which the hub
// has fanned out: every event after it reaches the stream live; a client
// resuming from an earlier position reads the events up to it with
// Backlog first.
func (h *Hub) Subscribe(ctx context.Context, filter Filter) (*Stream, audit.Position, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, audit.Position{}, ctx.Err()
	}
	s := &Stream{C: make(chan *Message, h.cfg.Buffer), filter: filter, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[s] = struct{}{}
	return s, h.pos, nil
}

// Close ends the stream.
func (s *Stream) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.streams[s]; ok {
		delete(h.streams, s)
		if !s.closed {
			s.closed = true
			close(s.C)
		}
	}
}

// Backlog returns the events after from up to and including upTo that
// filter accepts, in order, reading at most max events from the outbox. It
// returns the position of the last event read, and more when events up to
// upTo remain to be read.
func (h *Hub) Backlog(ctx context.Context, from, upTo audit.Position, filter Filter, max int) (out []*audit.Event, last audit.Position, more bool, err error) {
	last = from
	for read := 0; read < max; {
		events, err := audit.EventsAfter(ctx, h.pool, last, min(500, max-read))
		if err != nil {
			return nil, last, false, err
		}
		if len(events) == 0 {
			return out, last, false, nil
		}
		for i := range events {
			e := &events[i]
			if e.Position.After(upTo) {
				return out, last, false, nil
			}
			last = e.Position
			read++
			if filter(&Message{Event: e, Topic: e.Topic}) {
				out = append(out, e)
			}
		}
	}
	return out, last, upTo.After(last), nil
}

// Run listens and fans out until ctx ends. It starts from the newest
// event: streams that need older ones read their backlog.
func (h *Hub) Run(ctx context.Context) error {
	var err error
	for {
		if h.pos, err = h.head(ctx); err == nil {
			break
		}
		h.logger.Error("live hub: read outbox head", "error", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	close(h.ready)
	defer h.closeAll()
	for ctx.Err() == nil {
		err := h.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		h.logger.Warn("live hub: listener lost, reconnecting", "error", err)
		// Whatever committed meanwhile is read after the next LISTEN.
		if !sleep(ctx, 500*time.Millisecond) {
			return nil
		}
	}
	return nil
}

func (h *Hub) head(ctx context.Context) (audit.Position, error) {
	return audit.Head(ctx, h.pool)
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// listen holds one listening connection until it fails or ctx ends.
func (h *Hub) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, h.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("live: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range append([]string{audit.Channel}, h.cfg.Channels...) {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("live: listen %s: %w", ch, err)
		}
	}
	// LISTEN first, then read: nothing committed in between is missed.
	if err := h.poll(ctx); err != nil {
		return err
	}
	for {
		wait, cancel := context.WithTimeout(ctx, h.cfg.PollInterval)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet: check the connection and read anyway.
			if err := conn.Ping(ctx); err != nil {
				return fmt.Errorf("live: ping: %w", err)
			}
			if err := h.poll(ctx); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("live: wait: %w", err)
		case n.Channel == audit.Channel:
			if err := h.poll(ctx); err != nil {
				return err
			}
		default:
			h.fanOut(&Message{Topic: n.Channel, Signal: json.RawMessage(n.Payload)})
		}
	}
}

// poll reads every event after the hub's position and fans it out.
func (h *Hub) poll(ctx context.Context) error {
	for {
		events, err := audit.EventsAfter(ctx, h.pool, h.pos, 500)
		if err != nil {
			return err
		}
		for i := range events {
			h.fanOut(&Message{Event: &events[i], Topic: events[i].Topic})
		}
		if len(events) < 500 {
			return nil
		}
	}
}

// fanOut hands m to every stream that wants it. An event moves the hub's
// position in the same critical section, so that a stream subscribing
// meanwhile either receives the event live or finds it in its backlog.
func (h *Hub) fanOut(m *Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.Event != nil {
		h.pos = m.Event.Position
	}
	for s := range h.streams {
		if !s.filter(m) {
			continue
		}
		select {
		case s.C <- m:
			h.delivered.Inc()
		default:
			// The client cannot keep up: close its stream; it reconnects
			// with Last-Event-ID and reads the rest from the outbox.
			delete(h.streams, s)
			s.closed = true
			close(s.C)
			h.dropped.Inc()
		}
	}
}

func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		delete(h.streams, s)
		if !s.closed {
			s.closed = true
			close(s.C)
		}
	}
}
