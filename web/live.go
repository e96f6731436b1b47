package web

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/live"
)

// Server-Sent Events.
//
// A stream sends each committed event with its position as the SSE id; a
// client that reconnects sends it back as Last-Event-ID (EventSource does
// so by itself; ?last_event_id= works too) and first receives everything
// it missed, read from the outbox, then the live events, each once.
// Passing signals (typing, viewing) carry no id and are not replayed.
// fasthttp notices a gone client only when a write fails, so streams send
// a comment every heartbeat; each write extends the connection's write
// deadline, which is what exempts streams from the server's WriteTimeout.

const (
	heartbeat      = 15 * time.Second
	writeAllowance = 30 * time.Second
	backlogLimit   = 10_000
)

// streamWriter writes SSE frames to one client.
type streamWriter struct {
	w    *bufio.Writer
	conn interface{ SetWriteDeadline(time.Time) error }
	err  error
}

func (sw *streamWriter) frame(id, event string, data []byte) {
	if sw.err != nil {
		return
	}
	sw.err = sw.conn.SetWriteDeadline(time.Now().Add(writeAllowance))
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	if sw.err == nil {
		_, sw.err = sw.w.WriteString(b.String())
	}
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
}

func (sw *streamWriter) comment(text string) {
	if sw.err != nil {
		return
	}
	sw.err = sw.conn.SetWriteDeadline(time.Now().Add(writeAllowance))
	if sw.err == nil {
		_, sw.err = sw.w.WriteString(": " + text + "\n\n")
	}
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
}

// render turns a message into an SSE frame's id, event name and data, or
// reports false to skip it.
type render func(m *live.Message) (id, event string, data []byte, ok bool)

// stream answers with an event stream: the backlog after Last-Event-ID,
// then live messages, with heartbeats, until the client goes or the hub
// stops.
func (s *Server) stream(c *fiber.Ctx, filter live.Filter, rend render) error {
	var from *audit.Position
	last := c.Get("Last-Event-ID")
	if last == "" {
		last = c.Query("last_event_id")
	}
	if last != "" {
		p, err := audit.ParsePosition(last)
		if err != nil {
			return writeProblem(c, Problem{Type: "about:blank", Title: "Invalid input", Status: fiber.StatusBadRequest,
				Field: "Last-Event-ID", Reason: "is not an event id this stream sent"})
		}
		from = &p
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	sub, upTo, err := s.Hub.Subscribe(ctx, filter)
	cancel()
	if err != nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "live events are starting; retry")
	}
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("X-Accel-Buffering", "no")
	conn := c.Context().Conn()
	hub := s.Hub
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer sub.Close()
		sw := &streamWriter{w: w, conn: conn}
		sw.w.WriteString("retry: 2000\n\n")
		written := upTo
		if from != nil {
			// From the client's last id up to where the hub stands; a client
			// coming from a process that is ahead of this one (its id after
			// upTo) reads nothing here and skips what it saw there.
			written = *from
			more := true
			for read := 0; more && read < backlogLimit && sw.err == nil; read += 1000 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				events, lastRead, again, err := hub.Backlog(ctx, written, upTo, filter, 1000)
				cancel()
				if err != nil {
					sw.frame("", "error", []byte(`{"detail":"reading missed events failed; reconnect"}`))
					return
				}
				for _, e := range events {
					if id, ev, data, ok := rend(&live.Message{Event: e, Topic: e.Topic}); ok {
						sw.frame(id, ev, data)
					}
				}
				written, more = lastRead, again
			}
			if more {
				// Too far behind to replay: the client starts afresh.
				sw.frame("", "reset", []byte(`{"detail":"too many missed events; reload the view"}`))
			}
			if upTo.After(written) {
				written = upTo // everything up to upTo was read (or skipped by the reset)
			}
		}
		sw.comment("live")
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for sw.err == nil {
			select {
			case m, ok := <-sub.C:
				if !ok {
					return // overrun or shutting down: the client resumes
				}
				if m.Event != nil {
					if !m.Event.Position.After(written) {
						continue
					}
					written = m.Event.Position
				}
				if id, ev, data, ok := rend(m); ok {
					sw.frame(id, ev, data)
				}
			case <-tick.C:
				sw.comment("heartbeat")
			}
		}
	})
	return nil
}

// eventMeta is what filters read from an event's payload.
type eventMeta struct {
	ConversationID int64  `json:"conversation_id"`
	SubscriberID   int64  `json:"subscriber_id"`
	Private        bool   `json:"private"`
	Author         string `json:"author"`
	AppID          *int64 `json:"app_id"`
}

func metaOf(m *live.Message) (eventMeta, bool) {
	if meta, ok := m.Meta.(eventMeta); ok {
		return meta, true
	}
	var meta eventMeta
	raw := m.Signal
	if m.Event != nil {
		raw = m.Event.Payload
	}
	if json.Unmarshal(raw, &meta) != nil {
		return meta, false
	}
	m.Meta = meta
	return meta, true
}

// staffEvents is the staff event stream. Admins receive every event;
// agents conversation events; marketers campaign and import events.
func (s *Server) staffEvents(c *fiber.Ctx) error {
	role := roleOf(c)
	filter := func(m *live.Message) bool {
		switch {
		case m.Event == nil:
			return readsConversations(role) // typing and viewing
		case role == access.RoleAdmin:
			return true
		case role == access.RoleAgent:
			return strings.HasPrefix(m.Topic, "conversation.")
		default:
			return strings.HasPrefix(m.Topic, "campaign.") || strings.HasPrefix(m.Topic, "import.")
		}
	}
	return s.stream(c, filter, func(m *live.Message) (string, string, []byte, bool) {
		if m.Event == nil {
			return "", "signal", m.Signal, true
		}
		data, err := json.Marshal(map[string]any{"id": m.Event.Position.String(), "event_id": m.Event.ID,
			"topic": m.Event.Topic, "object_type": m.Event.ObjectType, "object_id": m.Event.ObjectID,
			"actor": m.Event.Actor, "at": m.Event.At, "data": m.Event.Payload})
		if err != nil {
			return "", "", nil, false
		}
		return m.Event.Position.String(), m.Event.Topic, data, true
	})
}

// subscriberTopics are the events a subscriber's own stream carries.
// conversation.read (an agent read the conversation) becomes "read", for
// the widget's seen mark.
var subscriberTopics = map[string]bool{"conversation.message": true, "conversation.keyword": true,
	"conversation.transactional": true, "conversation.read": true}

// subscriberEvents is a subscriber's stream of their conversation in one
// app: the messages to and from them (never notes) and agents' typing.
func (s *Server) subscriberEvents(c *fiber.Ctx) error {
	subID, appID := conversationCaller(c)
	filter := func(m *live.Message) bool {
		if m.Event != nil && !subscriberTopics[m.Topic] {
			return false
		}
		meta, ok := metaOf(m)
		if !ok || meta.SubscriberID != subID || meta.Private {
			return false
		}
		if m.Event == nil {
			return meta.Author == conversations.AuthorAgent // typing of an agent, in any app of theirs
		}
		return meta.AppID != nil && *meta.AppID == appID
	}
	return s.stream(c, filter, func(m *live.Message) (string, string, []byte, bool) {
		if m.Event == nil {
			var p conversations.Presence
			if json.Unmarshal(m.Signal, &p) != nil {
				return "", "", nil, false
			}
			data, _ := json.Marshal(map[string]any{"type": p.Type, "name": p.Name})
			return "", "typing", data, true
		}
		if m.Topic == "conversation.read" {
			data, _ := json.Marshal(map[string]any{"at": m.Event.At})
			return m.Event.Position.String(), "read", data, true
		}
		var payload struct {
			Message map[string]any `json:"message"`
		}
		if json.Unmarshal(m.Event.Payload, &payload) != nil || payload.Message == nil {
			return "", "", nil, false
		}
		// What the history shows: staff ids are Herald's own business.
		delete(payload.Message, "author_user_id")
		data, err := json.Marshal(payload.Message)
		if err != nil {
			return "", "", nil, false
		}
		return m.Event.Position.String(), "message", data, true
	})
}
