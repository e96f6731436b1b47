// Package conversations holds what subscribers say back: replies to campaigns
// (quick-reply buttons) land in the subscriber's current conversation, where
// support agents find them.
package conversations

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
)

// Conversation is a subscriber's exchange with the company.
type Conversation struct {
	ID            int64     `json:"id"`
	SubscriberID  int64     `json:"subscriber_id"`
	Status        string    `json:"status"`
	CreatedAt     time.Time `json:"created_at"`
	LastMessageAt time.Time `json:"last_message_at"`
	Messages      []Message `json:"messages"`
}

// Message is one message in a conversation.
type Message struct {
	ID         int64     `json:"id"`
	Author     string    `json:"author"`
	Body       string    `json:"body"`
	CampaignID *int64    `json:"campaign_id,omitempty"`
	Action     *string   `json:"action,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Reply adds a subscriber's quick reply to a campaign to their current
// conversation, opening one if they have none, and returns its id. A person
// replies once per campaign and button: a reply posted again (a service
// worker retrying) adds nothing and reports added false, so the caller
// counts it once. Call it in the transaction that counts the reply.
func Reply(ctx context.Context, db database.DB, subscriberID, appID, campaignID int64, action, body string) (conversationID int64, added bool, err error) {
	// The row is the reply's idempotency key; a concurrent second post waits
	// on it and then finds it taken. A person who was erased (or blocked)
	// may still tap an old notification: their reply is dropped, so that
	// erasure stays erasure.
	tag, err := db.Exec(ctx, `INSERT INTO campaign_replies (campaign_id, subscriber_id, action)
		SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM subscribers WHERE id = $2 AND state = 'active')
		ON CONFLICT DO NOTHING`, campaignID, subscriberID, action)
	if err != nil {
		return 0, false, fmt.Errorf("conversations: record reply: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, false, nil
	}
	var id int64
	err = db.QueryRow(ctx, `INSERT INTO conversations (subscriber_id, app_id) VALUES ($1, $2)
		ON CONFLICT (subscriber_id) WHERE status <> 'closed'
		DO UPDATE SET last_message_at = now(), updated_at = now() RETURNING id`, subscriberID, appID).Scan(&id)
	if err != nil {
		return 0, false, fmt.Errorf("conversations: open: %w", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO conversation_messages (conversation_id, author, body, campaign_id, action)
		VALUES ($1, 'subscriber', $2, $3, $4)`, id, body, campaignID, action); err != nil {
		return 0, false, fmt.Errorf("conversations: add reply: %w", err)
	}
	return id, true, nil
}

// CampaignReply records that a subscriber replied to a campaign with one of
// its buttons.
type CampaignReply struct {
	CampaignID int64     `json:"campaign_id"`
	Action     string    `json:"action"`
	CreatedAt  time.Time `json:"created_at"`
}

// CampaignReplies returns a subscriber's campaign replies, oldest first, for
// the GDPR export: they outlive the conversation they landed in.
func CampaignReplies(ctx context.Context, db database.DB, subscriberID int64) ([]CampaignReply, error) {
	rows, err := db.Query(ctx, `SELECT campaign_id, action, created_at FROM campaign_replies
		WHERE subscriber_id = $1 ORDER BY created_at, campaign_id, action`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: campaign replies: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CampaignReply, error) {
		var c CampaignReply
		err := r.Scan(&c.CampaignID, &c.Action, &c.CreatedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: campaign replies: %w", err)
	}
	return out, nil
}

// OfSubscriber returns a subscriber's conversations with their messages,
// oldest first, for the GDPR export.
func OfSubscriber(ctx context.Context, db database.DB, subscriberID int64) ([]Conversation, error) {
	rows, err := db.Query(ctx, `SELECT id, subscriber_id, status, created_at, last_message_at FROM conversations
		WHERE subscriber_id = $1 ORDER BY id`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: list: %w", err)
	}
	convs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) {
		var c Conversation
		err := r.Scan(&c.ID, &c.SubscriberID, &c.Status, &c.CreatedAt, &c.LastMessageAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: list: %w", err)
	}
	for i := range convs {
		rows, err := db.Query(ctx, `SELECT id, author, body, campaign_id, action, created_at FROM conversation_messages
			WHERE conversation_id = $1 ORDER BY id`, convs[i].ID)
		if err != nil {
			return nil, fmt.Errorf("conversations: messages: %w", err)
		}
		convs[i].Messages, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
			var m Message
			err := r.Scan(&m.ID, &m.Author, &m.Body, &m.CampaignID, &m.Action, &m.CreatedAt)
			return m, err
		})
		if err != nil {
			return nil, fmt.Errorf("conversations: messages: %w", err)
		}
	}
	return convs, nil
}

// Erase deletes a subscriber's conversations and campaign replies (GDPR
// art. 17). The campaigns' reply counts stay: they name nobody.
func Erase(ctx context.Context, db database.DB, subscriberID int64) error {
	if _, err := db.Exec(ctx, `DELETE FROM conversations WHERE subscriber_id = $1`, subscriberID); err != nil {
		return fmt.Errorf("conversations: erase: %w", err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM campaign_replies WHERE subscriber_id = $1`, subscriberID); err != nil {
		return fmt.Errorf("conversations: erase campaign replies: %w", err)
	}
	return nil
}
