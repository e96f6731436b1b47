package conversations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
)

// Status is where a conversation stands.
type Status string

// The statuses of a conversation.
const (
	// StatusOpen waits for staff.
	StatusOpen Status = "open"
	// StatusPending waits for the subscriber; their next message opens it.
	StatusPending Status = "pending"
	// StatusSnoozed is put away until SnoozedUntil or the subscriber's next
	// message, whichever comes first.
	StatusSnoozed Status = "snoozed"
	// StatusResolved is done; the subscriber's next message reopens it.
	StatusResolved Status = "resolved"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusOpen || s == StatusPending || s == StatusSnoozed || s == StatusResolved
}

// Conversation is a subscriber's exchange with the company through one app.
type Conversation struct {
	ID            int64      `json:"id"`
	SubscriberID  int64      `json:"subscriber_id"`
	AppID         *int64     `json:"app_id"`
	Status        Status     `json:"status"`
	AssigneeID    *int64     `json:"assignee_id"`
	AssigneeName  string     `json:"assignee_name,omitempty"`
	TeamID        *int64     `json:"team_id"`
	Labels        []string   `json:"labels"`
	SnoozedUntil  *time.Time `json:"snoozed_until"`
	WaitingSince  *time.Time `json:"waiting_since"`
	Unread        int        `json:"unread"`
	CreatedAt     time.Time  `json:"created_at"`
	LastMessageAt time.Time  `json:"last_message_at"`
	ResolvedAt    *time.Time `json:"resolved_at"`
	// LastMessage is the newest message, notes included, in inbox lists.
	LastMessage *Message `json:"last_message,omitempty"`
	// Messages are filled only in the GDPR export.
	Messages []Message `json:"messages,omitempty"`
}

const conversationColumns = `c.id, c.subscriber_id, c.app_id, c.status, c.assignee_id, coalesce(u.name, ''), c.team_id,
	c.labels, c.snoozed_until, c.waiting_since, c.unread, c.created_at, c.last_message_at, c.resolved_at`

const conversationFrom = `conversations c LEFT JOIN users u ON u.id = c.assignee_id`

func scanConversation(row pgx.Row) (*Conversation, error) {
	var c Conversation
	err := row.Scan(&c.ID, &c.SubscriberID, &c.AppID, &c.Status, &c.AssigneeID, &c.AssigneeName, &c.TeamID,
		&c.Labels, &c.SnoozedUntil, &c.WaitingSince, &c.Unread, &c.CreatedAt, &c.LastMessageAt, &c.ResolvedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &c, err
}

func getConversation(ctx context.Context, db database.DB, id int64, lock string) (*Conversation, error) {
	c, err := scanConversation(db.QueryRow(ctx, `SELECT `+conversationColumns+` FROM `+conversationFrom+`
		WHERE c.id = $1 `+lock, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("conversations: get %d: %w", id, err)
	}
	return c, err
}

// Get returns a conversation.
func (s *Service) Get(ctx context.Context, id int64) (*Conversation, error) {
	return getConversation(ctx, s.pool, id, "")
}

// SubscriberConversation returns the conversation of a subscriber in an
// app, or ErrNotFound before their first message.
func (s *Service) SubscriberConversation(ctx context.Context, subscriberID, appID int64) (*Conversation, error) {
	c, err := scanConversation(s.pool.QueryRow(ctx, `SELECT `+conversationColumns+` FROM `+conversationFrom+`
		WHERE c.subscriber_id = $1 AND c.app_id = $2`, subscriberID, appID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("conversations: subscriber conversation: %w", err)
	}
	return c, err
}

// OfSubscriber returns a subscriber's conversations, one per app at most,
// most recently active first: what the console's subscriber page links to.
func (s *Service) OfSubscriber(ctx context.Context, subscriberID int64) ([]Conversation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+conversationColumns+` FROM `+conversationFrom+`
		WHERE c.subscriber_id = $1
		ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: of subscriber: %w", err)
	}
	defer rows.Close()
	out := []Conversation{}
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, fmt.Errorf("conversations: unable to fetch conversation: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations: of subscriber: %w", err)
	}
	return out, nil
}

// event is the payload of a conversation's outbox events: what a live
// view needs to update without reading it back, and the ids a webhook
// receiver or an erasure looks for.
func (c *Conversation) event(extra map[string]any) map[string]any {
	e := map[string]any{"conversation_id": c.ID, "subscriber_id": c.SubscriberID, "app_id": c.AppID, "status": c.Status,
		"assignee_id": c.AssigneeID, "team_id": c.TeamID, "unread": c.Unread, "labels": c.Labels}
	for k, v := range extra {
		e[k] = v
	}
	return e
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

// ExportedAttachment is an attachment in a GDPR export, with its bytes.
type ExportedAttachment struct {
	Attachment
	Data []byte `json:"data"`
}

// OfSubscriber returns a subscriber's conversations with all their
// messages (notes included: the export is for the data subject), oldest
// first, and their attachments with their bytes, for the GDPR export.
func OfSubscriber(ctx context.Context, db database.DB, storage Storage, subscriberID int64) ([]Conversation, []ExportedAttachment, error) {
	rows, err := db.Query(ctx, `SELECT `+conversationColumns+` FROM `+conversationFrom+`
		WHERE c.subscriber_id = $1 ORDER BY c.id`, subscriberID)
	if err != nil {
		return nil, nil, fmt.Errorf("conversations: list: %w", err)
	}
	convs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) {
		c, err := scanConversation(r)
		if err != nil {
			return Conversation{}, err
		}
		return *c, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("conversations: unable to fetch conversation: %w", err)
	}
	for i := range convs {
		if convs[i].Messages, err = messages(ctx, db, convs[i].ID, true, 0, 1<<30); err != nil {
			return nil, nil, err
		}
	}
	if storage == nil {
		storage = PostgresStorage{}
	}
	atts, err := attachmentsOf(ctx, db, subscriberID)
	if err != nil {
		return nil, nil, err
	}
	out := make([]ExportedAttachment, 0, len(atts))
	for _, a := range atts {
		data, err := storage.Get(ctx, db, a.key)
		if err != nil {
			return nil, nil, fmt.Errorf("conversations: export attachment %d: %w", a.ID, err)
		}
		out = append(out, ExportedAttachment{Attachment: a, Data: data})
	}
	return convs, out, nil
}

// Erase deletes a subscriber's conversations, messages, attachments (their
// bytes too), campaign replies and the outbox events that carried their
// messages (GDPR art. 17). The campaigns' reply counts stay: they name
// nobody. Call it in the erasure's transaction.
func Erase(ctx context.Context, tx pgx.Tx, storage Storage, subscriberID int64) error {
	if storage == nil {
		storage = PostgresStorage{}
	}
	atts, err := attachmentsOf(ctx, tx, subscriberID)
	if err != nil {
		return err
	}
	keys := make([]string, len(atts))
	for i, a := range atts {
		keys[i] = a.key
	}
	if err := storage.Delete(ctx, tx, keys); err != nil {
		return fmt.Errorf("conversations: erase attachments: %w", err)
	}
	for _, q := range []string{
		`DELETE FROM attachments WHERE subscriber_id = $1`,
		`DELETE FROM conversations WHERE subscriber_id = $1`,
		`DELETE FROM campaign_replies WHERE subscriber_id = $1`,
		// Events keep what live views and webhooks were told, message text
		// included: they go with the person.
		`DELETE FROM outbox WHERE payload ? 'subscriber_id' AND payload->>'subscriber_id' = $1::bigint::text`,
	} {
		if _, err := tx.Exec(ctx, q, subscriberID); err != nil {
			return fmt.Errorf("conversations: erase: %w", err)
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only for values that cannot fail to marshal
	}
	return b
}
