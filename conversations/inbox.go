package conversations

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/invalid"
)

// Filter selects conversations for the inbox.
type Filter struct {
	// Status is one status; empty means open.
	Status Status
	// Assignee is "me", "none", "any" (the default) or a user id.
	Assignee string
	// Me is the calling user's id, for Assignee "me".
	Me     int64
	TeamID int64
	Label  string
	// After is the cursor of the last conversation of the previous page.
	After string
	// Limit is the page size; 0 means 50, at most 200.
	Limit int
}

// InboxPage is one page of the inbox.
type InboxPage struct {
	Items []Conversation `json:"items"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next"`
}

// cursor of the inbox order: oldest waiting first, then those nobody waits
// on, by id.
func inboxCursor(c *Conversation) string {
	if c.WaitingSince == nil {
		return "x." + strconv.FormatInt(c.ID, 10)
	}
	return strconv.FormatInt(c.WaitingSince.UnixMicro(), 10) + "." + strconv.FormatInt(c.ID, 10)
}

func parseInboxCursor(s string) (time.Time, int64, error) {
	a, b, ok := strings.Cut(s, ".")
	id, err := strconv.ParseInt(b, 10, 64)
	if !ok || err != nil || len(s) > 60 {
		return time.Time{}, 0, invalid.Field("after", "is not a cursor this API returned")
	}
	if a == "x" {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), id, nil // after every waiting one
	}
	us, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return time.Time{}, 0, invalid.Field("after", "is not a cursor this API returned")
	}
	return time.UnixMicro(us), id, nil
}

// Inbox lists conversations, oldest waiting first, with their unread
// counts and last message, by keyset pages.
func (s *Service) Inbox(ctx context.Context, f Filter) (*InboxPage, error) {
	status := f.Status
	if status == "" {
		status = StatusOpen
	}
	if !status.Valid() {
		return nil, invalid.Field("status", "must be open, pending, snoozed or resolved")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 200)
	var assignee any
	mode := "any"
	switch f.Assignee {
	case "", "any":
	case "none":
		mode = "none"
	case "me":
		mode, assignee = "one", f.Me
	default:
		id, err := strconv.ParseInt(f.Assignee, 10, 64)
		if err != nil || id <= 0 {
			return nil, invalid.Field("assignee", "must be me, none, any or a user id")
		}
		mode, assignee = "one", id
	}
	afterAt, afterID := time.Time{}, int64(0)
	infinity := false
	if f.After != "" {
		var err error
		if afterAt, afterID, err = parseInboxCursor(f.After); err != nil {
			return nil, err
		}
		infinity = afterAt.Year() == 9999
	}
	q := `
		SELECT ` + conversationColumns + `, m.id IS NOT NULL, ` + prefixedMessageColumns + `
		FROM ` + conversationFrom + `
		LEFT JOIN conversation_messages m ON m.id = c.last_message_id
		LEFT JOIN attachments a ON a.id = m.attachment_id
		WHERE c.status = $1
		  AND ($2 = 'any' OR ($2 = 'none' AND c.assignee_id IS NULL) OR ($2 = 'one' AND c.assignee_id = $3))
		  AND ($4::bigint = 0 OR c.team_id = $4::bigint)
		  AND ($5 = '' OR c.labels @> ARRAY[$5])
		  AND ($6::bigint = 0 OR (coalesce(c.waiting_since, 'infinity'), c.id) >
		      (CASE WHEN $8 THEN 'infinity'::timestamptz ELSE $7 END, $6))
		ORDER BY coalesce(c.waiting_since, 'infinity'), c.id
		LIMIT $9`
	rows, err := s.pool.Query(ctx, q, status, mode, assignee, f.TeamID, f.Label, afterID, afterAt, infinity, limit+1)
	if err != nil {
		return nil, fmt.Errorf("conversations: inbox: %w", err)
	}
	defer rows.Close()
	page := &InboxPage{Items: []Conversation{}}
	for rows.Next() {
		c, err := scanInboxRow(rows)
		if err != nil {
			return nil, fmt.Errorf("conversations: unable to fetch inbox row: %w", err)
		}
		page.Items = append(page.Items, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations: inbox: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = inboxCursor(&page.Items[limit-1])
	}
	return page, nil
}

const prefixedMessageColumns = `m.id, m.conversation_id, m.author, m.author_name, m.author_user_id, m.private, m.body, m.origin,
	m.campaign_id, m.action, m.reply_to, m.buttons, m.expires_at, m.delivered_at, m.read_at, m.created_at,
	a.id, a.subscriber_id, a.content_type, a.size, a.created_at`

func scanInboxRow(rows pgx.Rows) (*Conversation, error) {
	var c Conversation
	var has bool
	var m Message
	var mID, mConv *int64
	var author, authorName, body, origin *string
	var private *bool
	var buttons []byte
	var createdAt *time.Time
	var aID, aSub *int64
	var aType *string
	var aSize *int
	var aAt *time.Time
	err := rows.Scan(&c.ID, &c.SubscriberID, &c.AppID, &c.Status, &c.AssigneeID, &c.AssigneeName, &c.TeamID,
		&c.Labels, &c.SnoozedUntil, &c.WaitingSince, &c.Unread, &c.CreatedAt, &c.LastMessageAt, &c.ResolvedAt,
		&has, &mID, &mConv, &author, &authorName, &m.AuthorUserID, &private, &body, &origin,
		&m.CampaignID, &m.Action, &m.ReplyTo, &buttons, &m.ExpiresAt, &m.DeliveredAt, &m.ReadAt, &createdAt,
		&aID, &aSub, &aType, &aSize, &aAt)
	if err != nil {
		return nil, err
	}
	if has && mID != nil {
		m.ID, m.ConversationID, m.Author, m.AuthorName, m.Private = *mID, *mConv, *author, *authorName, *private
		m.Body, m.Origin, m.CreatedAt = *body, *origin, *createdAt
		if err := json.Unmarshal(buttons, &m.Buttons); err != nil {
			return nil, err
		}
		if aID != nil {
			m.Attachment = &Attachment{ID: *aID, SubscriberID: *aSub, ContentType: *aType, Size: *aSize, CreatedAt: *aAt}
		}
		c.LastMessage = &m
	}
	return &c, nil
}

// Counts are the inbox's totals of open conversations for one agent.
type Counts struct {
	Mine       int `json:"mine"`
	MineUnread int `json:"mine_unread"`
	Unassigned int `json:"unassigned"`
	Open       int `json:"open"`
	Unread     int `json:"unread"`
	// Teams are each team's open conversations and their unread messages,
	// by team id.
	Teams map[string]TeamCounts `json:"teams"`
}

// TeamCounts are one team's share of the open conversations.
type TeamCounts struct {
	Open   int `json:"open"`
	Unread int `json:"unread"`
}

// InboxCounts returns the open conversations' totals for user me.
func (s *Service) InboxCounts(ctx context.Context, me int64) (*Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE assignee_id = $1), coalesce(sum(unread) FILTER (WHERE assignee_id = $1), 0),
			count(*) FILTER (WHERE assignee_id IS NULL), count(*), coalesce(sum(unread), 0)
		FROM conversations WHERE status = 'open'`, me).Scan(&c.Mine, &c.MineUnread, &c.Unassigned, &c.Open, &c.Unread)
	if err != nil {
		return nil, fmt.Errorf("conversations: inbox counts: %w", err)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT team_id, count(*), coalesce(sum(unread), 0)
		FROM conversations WHERE status = 'open' AND team_id IS NOT NULL
		GROUP BY team_id`)
	if err != nil {
		return nil, fmt.Errorf("conversations: team counts: %w", err)
	}
	defer rows.Close()
	c.Teams = map[string]TeamCounts{}
	for rows.Next() {
		var team int64
		var tc TeamCounts
		if err := rows.Scan(&team, &tc.Open, &tc.Unread); err != nil {
			return nil, fmt.Errorf("conversations: unable to fetch team counts: %w", err)
		}
		c.Teams[strconv.FormatInt(team, 10)] = tc
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations: team counts: %w", err)
	}
	return &c, nil
}

// SearchHit is a message that matched a search.
type SearchHit struct {
	Message
	SubscriberID int64 `json:"subscriber_id"`
}

// Search finds messages by their text (PostgreSQL full-text search, all
// words must occur), newest first, before message id before (0: newest).
func (s *Service) Search(ctx context.Context, query string, before int64, limit int) ([]SearchHit, error) {
	q, err := validBody("q", query, false)
	if err != nil {
		return nil, err
	}
	if len(q) > 200 {
		return nil, invalid.Field("q", "is longer than 200 bytes")
	}
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+messageColumns+`, c.subscriber_id
		FROM `+messageFrom+` JOIN conversations c ON c.id = m.conversation_id
		WHERE m.search @@ plainto_tsquery('simple', $1) AND m.id < $2
		ORDER BY m.id DESC LIMIT $3`, q, before, limit)
	if err != nil {
		return nil, fmt.Errorf("conversations: search: %w", err)
	}
	defer rows.Close()
	out := []SearchHit{}
	for rows.Next() {
		var h SearchHit
		var buttons []byte
		var aID, aSub *int64
		var aType *string
		var aSize *int
		var aAt *time.Time
		m := &h.Message
		if err := rows.Scan(&m.ID, &m.ConversationID, &m.Author, &m.AuthorName, &m.AuthorUserID, &m.Private, &m.Body, &m.Origin,
			&m.CampaignID, &m.Action, &m.ReplyTo, &buttons, &m.ExpiresAt, &m.DeliveredAt, &m.ReadAt, &m.CreatedAt,
			&aID, &aSub, &aType, &aSize, &aAt, &h.SubscriberID); err != nil {
			return nil, fmt.Errorf("conversations: unable to fetch search hit: %w", err)
		}
		if err := json.Unmarshal(buttons, &m.Buttons); err != nil {
			return nil, fmt.Errorf("conversations: search hit buttons: %w", err)
		}
		if aID != nil {
			m.Attachment = &Attachment{ID: *aID, SubscriberID: *aSub, ContentType: *aType, Size: *aSize, CreatedAt: *aAt}
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Detail is a conversation with what an agent needs to know about the
// subscriber.
type Detail struct {
	Conversation
	Subscriber SubscriberContext `json:"subscriber"`
	Viewers    []Viewer          `json:"viewers"`
}

// SubscriberContext is the subscriber as an agent sees them beside the
// conversation. Device tokens are not part of it.
type SubscriberContext struct {
	ID         int64           `json:"id"`
	ExternalID *string         `json:"external_id"`
	Email      *string         `json:"email"`
	Locale     string          `json:"locale"`
	Timezone   string          `json:"timezone"`
	Attributes json.RawMessage `json:"attributes"`
	State      string          `json:"state"`
	// Verified is true for an app user whose identity the app's backend
	// proved (identity HMAC of their external id).
	Verified  bool              `json:"verified"`
	CreatedAt time.Time         `json:"created_at"`
	Lists     []ContextList     `json:"lists"`
	Devices   []ContextDevice   `json:"devices"`
	Campaigns []ContextCampaign `json:"campaigns"`
}

// ContextList is one of the subscriber's lists.
type ContextList struct {
	ID     int64  `json:"id"`
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// ContextDevice is one of the subscriber's devices.
type ContextDevice struct {
	ID        int64     `json:"id"`
	AppID     int64     `json:"app_id"`
	Platform  string    `json:"platform"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
}

// ContextCampaign is a campaign the subscriber received or answered.
type ContextCampaign struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	ReceivedAt *time.Time `json:"received_at"`
	Answered   []string   `json:"answered"`
}

// Detail returns a conversation with its subscriber's context and who is
// viewing it.
func (s *Service) Detail(ctx context.Context, id int64) (*Detail, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &Detail{Conversation: *c}
	sc := &d.Subscriber
	err = s.pool.QueryRow(ctx, `SELECT id, external_id, email, locale, timezone, attributes, state, external_id IS NOT NULL, created_at
		FROM subscribers WHERE id = $1`, c.SubscriberID).Scan(&sc.ID, &sc.ExternalID, &sc.Email, &sc.Locale, &sc.Timezone,
		&sc.Attributes, &sc.State, &sc.Verified, &sc.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("conversations: subscriber context: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT l.id, l.slug, l.name, m.status FROM memberships m JOIN lists l ON l.id = m.list_id
		WHERE m.subscriber_id = $1 ORDER BY l.name`, c.SubscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: subscriber lists: %w", err)
	}
	if sc.Lists, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ContextList]); err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch list: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT id, app_id, platform, active, created_at FROM devices
		WHERE subscriber_id = $1 ORDER BY id`, c.SubscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: subscriber devices: %w", err)
	}
	if sc.Devices, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ContextDevice]); err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch device: %w", err)
	}
	rows, err = s.pool.Query(ctx, `
		SELECT c.id, c.name, r.received_at, coalesce(a.actions, '{}')
		FROM (SELECT campaign_id, max(finished_at) AS received_at FROM deliveries
		      WHERE subscriber_id = $1 AND status = 'delivered' GROUP BY campaign_id
		      UNION
		      SELECT campaign_id, NULL FROM campaign_replies WHERE subscriber_id = $1
		        AND campaign_id NOT IN (SELECT campaign_id FROM deliveries WHERE subscriber_id = $1 AND status = 'delivered')) r
		JOIN campaigns c ON c.id = r.campaign_id
		LEFT JOIN (SELECT campaign_id, array_agg(action ORDER BY action) AS actions FROM campaign_replies
		           WHERE subscriber_id = $1 GROUP BY campaign_id) a ON a.campaign_id = c.id
		ORDER BY c.id DESC LIMIT 20`, c.SubscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: subscriber campaigns: %w", err)
	}
	if sc.Campaigns, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ContextCampaign]); err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch campaign: %w", err)
	}
	if d.Viewers, err = s.viewers(ctx, id); err != nil {
		return nil, err
	}
	return d, nil
}
