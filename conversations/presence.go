package conversations

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// PresenceChannel is the notification channel of passing signals (typing,
// viewing): they are sent to live views at once and never stored as
// events, so a reconnecting client does not replay old typing.
const PresenceChannel = "herald_presence"

// Presence is a passing signal about a conversation.
type Presence struct {
	Type           string `json:"type"` // typing, viewing
	ConversationID int64  `json:"conversation_id"`
	SubscriberID   int64  `json:"subscriber_id"`
	// Author is subscriber or agent; UserID and Name say which agent.
	Author string `json:"author"`
	UserID int64  `json:"user_id,omitempty"`
	Name   string `json:"name,omitempty"`
}

func (s *Service) signal(ctx context.Context, p Presence) error {
	payload, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("conversations: presence: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, PresenceChannel, string(payload)); err != nil {
		return fmt.Errorf("conversations: presence: %w", err)
	}
	return nil
}

// SubscriberTyping tells agents that the subscriber is typing.
func (s *Service) SubscriberTyping(ctx context.Context, subscriberID, appID int64) error {
	c, err := s.SubscriberConversation(ctx, subscriberID, appID)
	if err != nil {
		return err
	}
	return s.signal(ctx, Presence{Type: "typing", ConversationID: c.ID, SubscriberID: subscriberID, Author: AuthorSubscriber})
}

// AgentTyping tells the subscriber and other agents that an agent is typing.
func (s *Service) AgentTyping(ctx context.Context, conversationID int64, author Author) error {
	c, err := s.Get(ctx, conversationID)
	if err != nil {
		return err
	}
	return s.signal(ctx, Presence{Type: "typing", ConversationID: c.ID, SubscriberID: c.SubscriberID, Author: AuthorAgent,
		UserID: author.UserID, Name: author.Name})
}

// viewerWindow is how long a viewing signal counts: the console repeats
// it while the conversation is on screen.
const viewerWindow = 30 * time.Second

// Viewing records that an agent has a conversation on screen and tells
// other agents.
func (s *Service) Viewing(ctx context.Context, conversationID int64, author Author) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO conversation_viewers (conversation_id, user_id) SELECT $1, $2
		WHERE EXISTS (SELECT 1 FROM conversations WHERE id = $1)
		ON CONFLICT (conversation_id, user_id) DO UPDATE SET seen_at = now()`, conversationID, author.UserID)
	if err != nil {
		return fmt.Errorf("conversations: viewing: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return s.signal(ctx, Presence{Type: "viewing", ConversationID: conversationID, Author: AuthorAgent,
		UserID: author.UserID, Name: author.Name})
}

// Viewer is an agent who has a conversation on screen.
type Viewer struct {
	UserID int64     `json:"user_id"`
	Name   string    `json:"name"`
	SeenAt time.Time `json:"seen_at"`
}

func (s *Service) viewers(ctx context.Context, conversationID int64) ([]Viewer, error) {
	rows, err := s.pool.Query(ctx, `SELECT v.user_id, u.name, v.seen_at FROM conversation_viewers v JOIN users u ON u.id = v.user_id
		WHERE v.conversation_id = $1 AND v.seen_at > now() - $2::interval ORDER BY u.name`, conversationID, viewerWindow.String())
	if err != nil {
		return nil, fmt.Errorf("conversations: viewers: %w", err)
	}
	defer rows.Close()
	out := []Viewer{}
	for rows.Next() {
		var v Viewer
		if err := rows.Scan(&v.UserID, &v.Name, &v.SeenAt); err != nil {
			return nil, fmt.Errorf("conversations: unable to fetch viewer: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
