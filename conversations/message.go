package conversations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// Authors of messages.
const (
	AuthorSubscriber = "subscriber"
	AuthorAgent      = "agent"
	AuthorBot        = "bot"
	AuthorSystem     = "system"
)

// Origins of messages.
const (
	OriginConversation  = "conversation"
	OriginCampaign      = "campaign"
	OriginTransactional = "transactional"
	OriginKeyword       = "keyword"
)

// Limits on what a message may hold.
const (
	// MaxBodyChars is the longest message body, in characters.
	MaxBodyChars = 4000
	// MaxButtons is how many action buttons a message may carry.
	MaxButtons   = 3
	maxClientKey = 100
)

// Button is an action button on a message to a subscriber. A tap comes
// back as a message with the button's label.
type Button struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	// URL, when set, is opened instead of answering.
	URL string `json:"url,omitempty"`
}

// Message is one message in a conversation.
type Message struct {
	ID             int64  `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	Author         string `json:"author"`
	// AuthorName is the employee's or system's display name, as shown to
	// the subscriber ("which employee said what").
	AuthorName   string          `json:"author_name"`
	AuthorUserID *int64          `json:"author_user_id,omitempty"`
	Private      bool            `json:"private"`
	Body         string          `json:"body"`
	Origin       string          `json:"origin"`
	CampaignID   *int64          `json:"campaign_id,omitempty"`
	Action       *string         `json:"action,omitempty"`
	ReplyTo      *int64          `json:"reply_to,omitempty"`
	Buttons      []Button        `json:"buttons"`
	Attachment   *Attachment     `json:"attachment,omitempty"`
	ExpiresAt    *time.Time      `json:"expires_at,omitempty"`
	DeliveredAt  *time.Time      `json:"delivered_at"`
	ReadAt       *time.Time      `json:"read_at"`
	CreatedAt    time.Time       `json:"created_at"`
	Deliveries   []DeviceOutcome `json:"deliveries,omitempty"`
}

// DeviceOutcome is where a message to a subscriber went on one device.
type DeviceOutcome struct {
	DeviceID   int64      `json:"device_id"`
	Platform   string     `json:"platform"`
	Status     string     `json:"status"`
	Outcome    *string    `json:"outcome"`
	Reason     *string    `json:"reason"`
	FinishedAt *time.Time `json:"finished_at"`
}

const messageColumns = `m.id, m.conversation_id, m.author, m.author_name, m.author_user_id, m.private, m.body, m.origin,
	m.campaign_id, m.action, m.reply_to, m.buttons, m.expires_at, m.delivered_at, m.read_at, m.created_at,
	a.id, a.subscriber_id, a.content_type, a.size, a.created_at`

const messageFrom = `conversation_messages m LEFT JOIN attachments a ON a.id = m.attachment_id`

func scanMessage(row pgx.Row) (*Message, error) {
	var m Message
	var buttons []byte
	var aID, aSub *int64
	var aType *string
	var aSize *int
	var aAt *time.Time
	err := row.Scan(&m.ID, &m.ConversationID, &m.Author, &m.AuthorName, &m.AuthorUserID, &m.Private, &m.Body, &m.Origin,
		&m.CampaignID, &m.Action, &m.ReplyTo, &buttons, &m.ExpiresAt, &m.DeliveredAt, &m.ReadAt, &m.CreatedAt,
		&aID, &aSub, &aType, &aSize, &aAt)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(buttons, &m.Buttons); err != nil {
		return nil, fmt.Errorf("buttons of message %d: %w", m.ID, err)
	}
	if aID != nil {
		m.Attachment = &Attachment{ID: *aID, SubscriberID: *aSub, ContentType: *aType, Size: *aSize, CreatedAt: *aAt}
	}
	return &m, nil
}

// messages returns a page of a conversation's messages before id before
// (0: the newest), oldest first.
func messages(ctx context.Context, db database.DB, conversationID int64, private bool, before int64, limit int) ([]Message, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	q := `
		SELECT ` + messageColumns + `
		FROM ` + messageFrom + `
		WHERE m.conversation_id = $1 AND m.id < $2 AND ($3 OR NOT m.private)
		ORDER BY m.id DESC
		LIMIT $4`
	rows, err := db.Query(ctx, q, conversationID, before, private, limit)
	if err != nil {
		return nil, fmt.Errorf("conversations: messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
		m, err := scanMessage(r)
		if err != nil {
			return Message{}, err
		}
		return *m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch message: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

func getMessage(ctx context.Context, db database.DB, id int64) (*Message, error) {
	m, err := scanMessage(db.QueryRow(ctx, `SELECT `+messageColumns+` FROM `+messageFrom+` WHERE m.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("conversations: message %d: %w", id, err)
	}
	return m, nil
}

// Page is a request for a page of messages.
type Page struct {
	// Before is the id of the oldest message already shown; 0 for the newest.
	Before int64
	// Limit is how many to return; 0 means 50, at most 200.
	Limit int
}

func (p Page) limit() int {
	if p.Limit <= 0 {
		return 50
	}
	return min(p.Limit, 200)
}

// Messages returns a page of a conversation's messages for staff, notes
// included, oldest first.
func (s *Service) Messages(ctx context.Context, conversationID int64, p Page) ([]Message, error) {
	if _, err := s.Get(ctx, conversationID); err != nil {
		return nil, err
	}
	return messages(ctx, s.pool, conversationID, true, p.Before, p.limit())
}

// Message returns one message with where it went, for the API's delivery
// status.
func (s *Service) Message(ctx context.Context, id int64) (*Message, error) {
	m, err := getMessage(ctx, s.pool, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT device_id, platform, status, outcome, reason, finished_at
		FROM message_deliveries WHERE message_id = $1 ORDER BY device_id`, id)
	if err != nil {
		return nil, fmt.Errorf("conversations: message deliveries: %w", err)
	}
	m.Deliveries, err = pgx.CollectRows(rows, pgx.RowToStructByPos[DeviceOutcome])
	if err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch message delivery: %w", err)
	}
	return m, nil
}

// validBody checks a message body: text without NUL bytes, valid UTF-8, at
// most MaxBodyChars characters; empty only if empty is allowed.
func validBody(field, body string, allowEmpty bool) (string, error) {
	if !utf8.ValidString(body) {
		return "", invalid.Field(field, "is not valid UTF-8")
	}
	if strings.ContainsRune(body, 0) {
		return "", invalid.Field(field, "contains a NUL byte")
	}
	body = strings.TrimSpace(body)
	if body == "" && !allowEmpty {
		return "", invalid.Field(field, "is required")
	}
	if utf8.RuneCountInString(body) > MaxBodyChars {
		return "", invalid.Fieldf(field, "is longer than %d characters", MaxBodyChars)
	}
	return body, nil
}

func validClientKey(field, key string) error {
	if len(key) > maxClientKey {
		return invalid.Fieldf(field, "is longer than %d characters", maxClientKey)
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return invalid.Field(field, "may hold printable ASCII only")
		}
	}
	return nil
}

func validButtons(buttons []Button) ([]Button, error) {
	if len(buttons) > MaxButtons {
		return nil, invalid.Fieldf("buttons", "at most %d buttons", MaxButtons)
	}
	out := make([]Button, len(buttons))
	for i, b := range buttons {
		label, err := validBody(fmt.Sprintf("buttons[%d].label", i), b.Label, false)
		if err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(label) > 40 {
			return nil, invalid.Fieldf(fmt.Sprintf("buttons[%d].label", i), "is longer than 40 characters")
		}
		if b.URL != "" {
			if len(b.URL) > 2000 || !(strings.HasPrefix(b.URL, "https://") || strings.HasPrefix(b.URL, "http://")) ||
				strings.ContainsAny(b.URL, "\x00 \n\r\t") {
				return nil, invalid.Field(fmt.Sprintf("buttons[%d].url", i), "must be an http or https URL")
			}
		}
		out[i] = Button{ID: "b" + strconv.Itoa(i), Label: label, URL: b.URL}
	}
	return out, nil
}

// inbound is a message from a subscriber.
type inbound struct {
	subscriberID int64
	appID        int64
	body         string
	clientKey    string
	origin       string
	campaignID   *int64
	action       *string
	replyTo      *int64
	attachmentID *int64
	// silent messages (keywords) are kept in the subscriber's history but
	// never reach the inbox: no reopening, no unread count, no waiting.
	silent bool
}

// ErrDuplicate is wrapped by receive when the message was sent before
// under the same client key: the earlier message is returned.
var errDuplicate = errors.New("conversations: duplicate")

// openConversation returns the subscriber's conversation in an app,
// locked for the rest of tx, creating it (in the app's inbox team) if
// needed. A conversation created by a silent or outbound message starts
// resolved: nobody waits on it.
func openConversation(ctx context.Context, tx pgx.Tx, subscriberID, appID int64, startResolved bool) (*Conversation, bool, error) {
	status := StatusOpen
	if startResolved {
		status = StatusResolved
	}
	// One statement: the subscriber must be active (a person who was erased
	// or blocked may still tap an old notification or send from a stale
	// app: nothing is kept, so that erasure stays erasure), and the
	// conversation is made or found and locked.
	// Most messages join a conversation that exists: lock it without
	// writing a row version; only a first message inserts.
	c, err := scanConversation(tx.QueryRow(ctx, `
		SELECT `+conversationReturning+`
		FROM conversations JOIN subscribers s ON s.id = conversations.subscriber_id AND s.state = 'active'
		WHERE conversations.subscriber_id = $1 AND conversations.app_id = $2
		FOR UPDATE OF conversations FOR SHARE OF s`, subscriberID, appID))
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, fmt.Errorf("conversations: open conversation: %w", err)
	}
	// One statement: the subscriber must be active (a person who was erased
	// or blocked may still tap an old notification or send from a stale
	// app: nothing is kept, so that erasure stays erasure), and the
	// conversation is made or, made meanwhile by a concurrent first
	// message, found and locked.
	c = &Conversation{}
	var created bool
	err = tx.QueryRow(ctx, `
		WITH sub AS (SELECT id FROM subscribers WHERE id = $1 AND state = 'active' FOR SHARE)
		INSERT INTO conversations (subscriber_id, app_id, status, team_id, resolved_at)
		SELECT sub.id, $2, $3, (SELECT inbox_team_id FROM apps WHERE id = $2), CASE WHEN $3 = 'resolved' THEN now() END
		FROM sub
		ON CONFLICT (subscriber_id, app_id) DO UPDATE SET updated_at = now()
		RETURNING `+conversationReturning+`, xmax = 0`, subscriberID, appID, status).Scan(&c.ID, &c.SubscriberID, &c.AppID,
		&c.Status, &c.AssigneeID, &c.AssigneeName, &c.TeamID, &c.Labels, &c.SnoozedUntil, &c.WaitingSince, &c.Unread,
		&c.CreatedAt, &c.LastMessageAt, &c.ResolvedAt, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, ErrSubscriberGone
	}
	if err != nil {
		return nil, false, fmt.Errorf("conversations: open conversation: %w", err)
	}
	return c, created, nil
}

// conversationReturning is conversationColumns for RETURNING clauses of
// statements on conversations.
const conversationReturning = `conversations.id, conversations.subscriber_id, conversations.app_id, conversations.status,
	conversations.assignee_id, coalesce((SELECT name FROM users WHERE users.id = conversations.assignee_id), ''),
	conversations.team_id, conversations.labels, conversations.snoozed_until, conversations.waiting_since,
	conversations.unread, conversations.created_at, conversations.last_message_at, conversations.resolved_at`

// messageReturning is messageColumns for RETURNING clauses of inserts
// without an attachment.
const messageReturning = `id, conversation_id, author, author_name, author_user_id, private, body, origin,
	campaign_id, action, reply_to, buttons, expires_at, delivered_at, read_at, created_at,
	NULL::bigint, NULL::bigint, NULL::text, NULL::int, NULL::timestamptz`

// byClientKey returns the message a sender already sent under key, if any.
func byClientKey(ctx context.Context, tx pgx.Tx, conversationID int64, key string) (*Message, error) {
	if key == "" {
		return nil, nil
	}
	m, err := scanMessage(tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM `+messageFrom+`
		WHERE m.conversation_id = $1 AND m.client_key = $2`, conversationID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("conversations: find by client key: %w", err)
	}
	return m, nil
}

// receive stores a subscriber's message in their conversation (opening or
// reopening it), hands it to a team's agent if the team assigns by itself,
// and records its event, in tx. A message sent before under the same
// client key is returned with errDuplicate and nothing is written.
func receive(ctx context.Context, tx pgx.Tx, actor audit.Actor, in inbound) (*Message, *Conversation, error) {
	conv, _, err := openConversation(ctx, tx, in.subscriberID, in.appID, in.silent)
	if err != nil {
		return nil, nil, err
	}
	// A key sent before conflicts and inserts nothing: the earlier message
	// is the answer. The conversation's row lock orders two sends at once.
	m, err := scanMessage(tx.QueryRow(ctx, `
		INSERT INTO conversation_messages (conversation_id, author, body, client_key, origin, campaign_id, action, reply_to, attachment_id)
		VALUES ($1, 'subscriber', $2, nullif($3, ''), $4, $5, $6, $7, $8)
		ON CONFLICT (conversation_id, client_key) WHERE client_key IS NOT NULL DO NOTHING
		RETURNING `+messageReturning, conv.ID, in.body, in.clientKey, in.origin, in.campaignID, in.action, in.replyTo, in.attachmentID))
	if errors.Is(err, pgx.ErrNoRows) {
		earlier, err := byClientKey(ctx, tx, conv.ID, in.clientKey)
		if err == nil {
			err = errDuplicate
		}
		return earlier, conv, err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("conversations: add message: %w", err)
	}
	if in.attachmentID != nil {
		if m, err = getMessage(ctx, tx, m.ID); err != nil {
			return nil, nil, err
		}
	}
	reopened := false
	q := `UPDATE conversations SET last_message_at = now(), last_message_id = $2, updated_at = now()
		WHERE id = $1 RETURNING ` + conversationReturning
	if !in.silent {
		reopened = conv.Status == StatusResolved || conv.Status == StatusSnoozed || conv.Status == StatusPending
		q = `
			UPDATE conversations SET
				last_message_at = now(), last_message_id = $2, updated_at = now(), unread = unread + 1,
				waiting_since = coalesce(waiting_since, now()),
				status = 'open', snoozed_until = NULL, resolved_at = NULL
			WHERE id = $1 RETURNING ` + conversationReturning
	}
	if conv, err = scanConversation(tx.QueryRow(ctx, q, conv.ID, m.ID)); err != nil {
		return nil, nil, fmt.Errorf("conversations: update conversation: %w", err)
	}
	actor = subscriberActor(actor, in.subscriberID)
	topic := "conversation.message"
	if in.silent {
		topic = "conversation.keyword"
	}
	if err := recordEvent(ctx, tx, actor, topic, conv, map[string]any{"message": m, "author": AuthorSubscriber,
		"reopened": reopened, "private": false}); err != nil {
		return nil, nil, err
	}
	if !in.silent && conv.AssigneeID == nil && conv.TeamID != nil {
		if _, err := autoAssign(ctx, tx, conv.ID, *conv.TeamID); err != nil {
			return nil, nil, err
		}
		if conv, err = getConversation(ctx, tx, conv.ID, ""); err != nil {
			return nil, nil, err
		}
	}
	return m, conv, nil
}

// subscriberActor is the actor of a subscriber's own change: a public
// caller becomes the subscriber their proof named.
func subscriberActor(actor audit.Actor, subscriberID int64) audit.Actor {
	if actor.Kind == audit.KindSubscriber && actor.ID == 0 {
		return actor.As(subscriberID)
	}
	return actor
}

// recordEvent records a conversation change and its outbox event.
func recordEvent(ctx context.Context, tx pgx.Tx, actor audit.Actor, topic string, c *Conversation, extra map[string]any) error {
	summary := map[string]any{"subscriber_id": c.SubscriberID}
	for _, k := range []string{"status", "assignee_id", "team_id", "labels", "private", "reason"} {
		if v, ok := extra[k]; ok {
			summary[k] = v
		}
	}
	if m, ok := extra["message"].(*Message); ok {
		summary["message_id"] = m.ID // the text stays out of the audit log
	}
	return audit.Record(ctx, tx, actor, audit.Change{Action: topic, ObjectType: "conversation",
		ObjectID: strconv.FormatInt(c.ID, 10), Summary: summary, Event: c.event(extra)})
}

// outbound is a message to a subscriber.
type outbound struct {
	conv         *Conversation
	author       string
	authorUserID *int64
	authorKeyID  *int64
	authorName   string
	private      bool
	body         string
	origin       string
	buttons      []Button
	clientKey    string
	expiresAt    *time.Time
	replyTo      *int64
	title        string
}

// post stores a message to a subscriber and, unless it is a note, queues
// its push to every active device of the subscriber in the conversation's
// app, in tx (none for a blocked subscriber, who is kept but never sent
// to). The push is a River job on QueueConversations.
func (s *Service) post(ctx context.Context, tx pgx.Tx, o outbound) (*Message, int, error) {
	buttons := o.buttons
	if buttons == nil {
		buttons = []Button{}
	}
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO conversation_messages (conversation_id, author, author_user_id, author_key_id, author_name, private,
			body, origin, buttons, client_key, expires_at, reply_to)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nullif($10, ''), $11, $12)
		RETURNING id`, o.conv.ID, o.author, o.authorUserID, o.authorKeyID, o.authorName, o.private,
		o.body, o.origin, mustJSON(buttons), o.clientKey, o.expiresAt, o.replyTo).Scan(&id)
	if err != nil {
		return nil, 0, fmt.Errorf("conversations: add message: %w", err)
	}
	devices := 0
	if !o.private && o.conv.AppID != nil {
		tag, err := tx.Exec(ctx, `
			INSERT INTO message_deliveries (message_id, device_id, platform, status)
			SELECT $1, d.id, d.platform, 'pending' FROM devices d JOIN subscribers s ON s.id = d.subscriber_id
			WHERE d.subscriber_id = $2 AND d.app_id = $3 AND d.active AND s.state = 'active'`, id, o.conv.SubscriberID, *o.conv.AppID)
		if err != nil {
			return nil, 0, fmt.Errorf("conversations: queue deliveries: %w", err)
		}
		if devices = int(tag.RowsAffected()); devices > 0 {
			if _, err := s.river.InsertTx(ctx, tx, DeliverArgs{MessageID: id, Title: o.title}, nil); err != nil {
				return nil, 0, fmt.Errorf("conversations: queue push: %w", err)
			}
		}
	}
	m, err := getMessage(ctx, tx, id)
	return m, devices, err
}

// SendRequest is a subscriber's message.
type SendRequest struct {
	Body string `json:"body"`
	// ClientKey makes a retried send land once: a message sent before
	// under the same key is returned instead of stored again.
	ClientKey    string `json:"client_key"`
	AttachmentID *int64 `json:"attachment_id"`
}

// Send stores a message from a subscriber in their conversation with an
// app. Keywords (STOP, START, HELP and a list's own) are answered
// automatically and never reach the inbox. It reports created false for a
// message sent before under the same client key.
func (s *Service) Send(ctx context.Context, actor audit.Actor, subscriberID, appID int64, req SendRequest) (*Message, bool, error) {
	body, err := validBody("body", req.Body, req.AttachmentID != nil)
	if err != nil {
		return nil, false, err
	}
	if err := validClientKey("client_key", req.ClientKey); err != nil {
		return nil, false, err
	}
	var m *Message
	created := true
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if req.AttachmentID != nil {
			if err := s.claimAttachment(ctx, tx, *req.AttachmentID, subscriberID, appID); err != nil {
				return err
			}
		}
		kw, err := s.keyword(ctx, tx, subscriberID, body, req.AttachmentID != nil)
		if err != nil {
			return err
		}
		var conv *Conversation
		m, conv, err = receive(ctx, tx, actor, inbound{subscriberID: subscriberID, appID: appID, body: body,
			clientKey: req.ClientKey, origin: OriginConversation, attachmentID: req.AttachmentID, silent: kw != nil})
		if errors.Is(err, errDuplicate) {
			created = false
			return nil
		}
		if err != nil {
			return err
		}
		if kw != nil {
			return s.answerKeyword(ctx, tx, actor, conv, m, kw)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if created {
		s.metrics.inbound.Inc()
		s.committed()
	}
	return m, created, nil
}

// History returns a page of a subscriber's conversation in an app, without
// staff notes, oldest first.
func (s *Service) History(ctx context.Context, subscriberID, appID int64, p Page) ([]Message, error) {
	c, err := s.SubscriberConversation(ctx, subscriberID, appID)
	if errors.Is(err, ErrNotFound) {
		return []Message{}, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := messages(ctx, s.pool, c.ID, false, p.Before, p.limit())
	for i := range out {
		out[i].AuthorUserID = nil // staff ids are Herald's own business
	}
	return out, err
}

// MarkReadBySubscriber records that the subscriber read the messages to
// them up to message id upTo.
func (s *Service) MarkReadBySubscriber(ctx context.Context, actor audit.Actor, subscriberID, appID, upTo int64) error {
	c, err := s.SubscriberConversation(ctx, subscriberID, appID)
	if err != nil {
		return err
	}
	return s.markRead(ctx, subscriberActor(actor, subscriberID), c.ID, []int64{}, upTo)
}

// markRead sets read (and delivered) on messages to the subscriber: those
// named, or all up to upTo when upTo > 0.
func (s *Service) markRead(ctx context.Context, actor audit.Actor, conversationID int64, ids []int64, upTo int64) error {
	changed := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			UPDATE conversation_messages SET read_at = now(), delivered_at = coalesce(delivered_at, now())
			WHERE conversation_id = $1 AND author <> 'subscriber' AND NOT private AND read_at IS NULL
			  AND (id = ANY($2) OR id <= $3)
			RETURNING id`, conversationID, ids, upTo)
		if err != nil {
			return fmt.Errorf("conversations: mark read: %w", err)
		}
		read, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("conversations: mark read: %w", err)
		}
		if len(read) == 0 {
			return nil
		}
		changed = true
		c, err := getConversation(ctx, tx, conversationID, "")
		if err != nil {
			return err
		}
		return recordEvent(ctx, tx, actor, "conversation.receipt", c, map[string]any{"message_ids": read, "receipt": "read"})
	})
	if err == nil && changed {
		s.committed()
	}
	return err
}

// Reply is an agent's or bot's message in a conversation.
type Reply struct {
	Body string `json:"body"`
	// Private makes it a note: staff see it, the subscriber never does.
	Private bool     `json:"private"`
	Buttons []Button `json:"buttons"`
	// CannedResponseID fills Body from a canned response, placeholders
	// replaced.
	CannedResponseID *int64 `json:"canned_response_id"`
	ClientKey        string `json:"client_key"`
}

// Author is who writes as staff: a user (agent) or an API key (bot).
type Author struct {
	UserID int64
	KeyID  int64
	Name   string
}

// Reply adds an agent's (or bot's) reply or note to a conversation. A
// reply is pushed to the subscriber's active devices on the conversations
// queue; a reply by an agent to an unassigned conversation assigns it to
// them. A retried reply with the same client key returns the first.
func (s *Service) Reply(ctx context.Context, actor audit.Actor, author Author, conversationID int64, r Reply) (*Message, error) {
	if err := validClientKey("client_key", r.ClientKey); err != nil {
		return nil, err
	}
	buttons, err := validButtons(r.Buttons)
	if err != nil {
		return nil, err
	}
	if r.Private && len(buttons) > 0 {
		return nil, invalid.Field("buttons", "a note has no buttons")
	}
	var m *Message
	created := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		conv, err := getConversation(ctx, tx, conversationID, "FOR UPDATE OF c")
		if err != nil {
			return err
		}
		if m, err = byClientKey(ctx, tx, conv.ID, r.ClientKey); err != nil || m != nil {
			return err
		}
		body := r.Body
		if r.CannedResponseID != nil {
			if body, err = s.renderCanned(ctx, tx, *r.CannedResponseID, conv, author); err != nil {
				return err
			}
		}
		if body, err = validBody("body", body, false); err != nil {
			return err
		}
		o := outbound{conv: conv, author: AuthorAgent, authorName: author.Name, private: r.Private, body: body,
			origin: OriginConversation, buttons: buttons, clientKey: r.ClientKey, title: author.Name}
		switch {
		case author.UserID != 0:
			o.authorUserID = &author.UserID
		case author.KeyID != 0:
			o.author, o.authorKeyID = AuthorBot, &author.KeyID
		default:
			o.author = AuthorBot // a system of Herald's own (tests, benchmarks)
		}
		if m, _, err = s.post(ctx, tx, o); err != nil {
			return err
		}
		created = true
		assigned := false
		if !r.Private {
			// An answer ends the wait; an agent who answers an unassigned
			// conversation takes it (as in most help desks).
			if _, err := tx.Exec(ctx, `UPDATE conversations SET waiting_since = NULL, unread = 0,
				last_message_at = now(), last_message_id = $2, updated_at = now(),
				assignee_id = coalesce(assignee_id, $3)
				WHERE id = $1`, conv.ID, m.ID, o.authorUserID); err != nil {
				return fmt.Errorf("conversations: update conversation: %w", err)
			}
			assigned = conv.AssigneeID == nil && o.authorUserID != nil
		}
		if conv, err = getConversation(ctx, tx, conv.ID, ""); err != nil {
			return err
		}
		if err := recordEvent(ctx, tx, actor, "conversation.message", conv, map[string]any{"message": m,
			"author": o.author, "private": r.Private}); err != nil {
			return err
		}
		if assigned {
			return recordEvent(ctx, tx, actor, "conversation.assign", conv, map[string]any{"assignee_id": conv.AssigneeID,
				"reason": "replied"})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.metrics.outbound.Inc()
		s.committed()
	}
	return m, nil
}

// DeliverArgs pushes one message to the devices queued for it.
type DeliverArgs struct {
	MessageID int64  `json:"message_id"`
	Title     string `json:"title,omitempty"`
}

// Kind is the job kind.
func (DeliverArgs) Kind() string { return "conversations.deliver" }

// InsertOpts puts pushes on their own queue, first among its jobs.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueConversations, Priority: 1, MaxAttempts: 8}
}
