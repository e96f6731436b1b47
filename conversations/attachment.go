package conversations

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// MaxAttachmentBytes is the largest attachment.
const MaxAttachmentBytes = 10 << 20

// AttachmentTypes are the content types Herald accepts, decided by the
// bytes themselves, never by a name or a claimed type.
var AttachmentTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"}

// Attachment is a file a subscriber sent. Its bytes are reached only
// through a short-lived signed URL (AttachmentURL).
type Attachment struct {
	ID           int64     `json:"id"`
	SubscriberID int64     `json:"-"`
	ContentType  string    `json:"content_type"`
	Size         int       `json:"size"`
	CreatedAt    time.Time `json:"created_at"`
	key          string
}

func attachmentsOf(ctx context.Context, db database.DB, subscriberID int64) ([]Attachment, error) {
	rows, err := db.Query(ctx, `SELECT id, subscriber_id, content_type, size, created_at, storage_key FROM attachments
		WHERE subscriber_id = $1 ORDER BY id`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: attachments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attachment, error) {
		var a Attachment
		err := r.Scan(&a.ID, &a.SubscriberID, &a.ContentType, &a.Size, &a.CreatedAt, &a.key)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch attachment: %w", err)
	}
	return out, nil
}

// Upload stores a file a subscriber is about to send. Its type is read
// from its first bytes; anything but AttachmentTypes is refused. Send it
// with a message (SendRequest.AttachmentID).
func (s *Service) Upload(ctx context.Context, actor audit.Actor, subscriberID, appID int64, data []byte) (*Attachment, error) {
	if len(data) == 0 {
		return nil, invalid.Field("file", "is empty")
	}
	if len(data) > MaxAttachmentBytes {
		return nil, invalid.Fieldf("file", "is larger than %d bytes", MaxAttachmentBytes)
	}
	kind := http.DetectContentType(data)
	if !slices.Contains(AttachmentTypes, kind) {
		return nil, invalid.Fieldf("file", "must be a JPEG, PNG, GIF or WebP image or a PDF (this is %s)", kind)
	}
	keyBytes := make([]byte, 24)
	if _, err := rand.Read(keyBytes); err != nil {
		return nil, fmt.Errorf("conversations: attachment key: %w", err)
	}
	key := base64.RawURLEncoding.EncodeToString(keyBytes)
	sum := sha256.Sum256(data)
	a := &Attachment{SubscriberID: subscriberID, ContentType: kind, Size: len(data), key: key}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		conv, _, err := openConversation(ctx, tx, subscriberID, appID, true)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO attachments (subscriber_id, conversation_id, storage_key, content_type, size, sha256)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`, subscriberID, conv.ID, key, kind, len(data), sum[:]).
			Scan(&a.ID, &a.CreatedAt); err != nil {
			return fmt.Errorf("conversations: add attachment: %w", err)
		}
		if err := s.storage.Put(ctx, tx, key, data); err != nil {
			return err
		}
		return audit.Record(ctx, tx, subscriberActor(actor, subscriberID), audit.Change{Action: "attachment.upload",
			ObjectType: "attachment", ObjectID: fmt.Sprint(a.ID), NoEvent: true,
			Summary: map[string]any{"subscriber_id": subscriberID, "size": len(data), "content_type": kind}})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// claimAttachment checks that an uploaded attachment is the subscriber's,
// in their conversation with the app, and not sent yet.
func (s *Service) claimAttachment(ctx context.Context, tx pgx.Tx, id, subscriberID, appID int64) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM conversation_messages WHERE attachment_id = a.id)
		FROM attachments a JOIN conversations c ON c.id = a.conversation_id
		WHERE a.id = $1 AND a.subscriber_id = $2 AND c.app_id = $3 FOR UPDATE OF a`, id, subscriberID, appID).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return invalid.Field("attachment_id", "no such attachment of yours")
	}
	if err != nil {
		return fmt.Errorf("conversations: claim attachment: %w", err)
	}
	if !ok {
		return invalid.Field("attachment_id", "was sent already")
	}
	return nil
}

// AttachmentOf returns attachment id if it belongs to the subscriber (for
// the subscriber's own link), or to anyone when subscriberID is 0 (for
// staff, whom web/ checks for the conversation roles).
func (s *Service) AttachmentOf(ctx context.Context, id, subscriberID int64) (*Attachment, error) {
	var a Attachment
	err := s.pool.QueryRow(ctx, `SELECT id, subscriber_id, content_type, size, created_at, storage_key FROM attachments
		WHERE id = $1 AND ($2::bigint = 0 OR subscriber_id = $2::bigint)`, id, subscriberID).
		Scan(&a.ID, &a.SubscriberID, &a.ContentType, &a.Size, &a.CreatedAt, &a.key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("conversations: attachment: %w", err)
	}
	return &a, nil
}

// AttachmentURL is a link to an attachment's bytes that works for
// AttachmentURLTTL. Whoever asks for it must already be allowed to see the
// attachment.
func (s *Service) AttachmentURL(a *Attachment) (string, time.Time) {
	expires := s.now().Add(s.cfg.AttachmentURLTTL).Truncate(time.Second)
	payload := binary.AppendUvarint(nil, uint64(a.ID))
	payload = binary.AppendUvarint(payload, uint64(expires.Unix()))
	mac := hmac.New(sha256.New, s.attachmentKey)
	mac.Write(payload)
	token := base64.RawURLEncoding.EncodeToString(append(payload, mac.Sum(nil)[:16]...))
	return s.cfg.PublicURL + "/public/v1/attachments/" + token, expires
}

// OpenAttachment returns the attachment and bytes a signed link names.
// Expired or forged links get ErrBadToken.
func (s *Service) OpenAttachment(ctx context.Context, token string) (*Attachment, []byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(token) > 100 || len(b) < 18 {
		return nil, nil, ErrBadToken
	}
	payload, sum := b[:len(b)-16], b[len(b)-16:]
	mac := hmac.New(sha256.New, s.attachmentKey)
	mac.Write(payload)
	if !hmac.Equal(mac.Sum(nil)[:16], sum) {
		return nil, nil, ErrBadToken
	}
	id, n := binary.Uvarint(payload)
	exp, k := binary.Uvarint(payload[max(n, 0):])
	if n <= 0 || k <= 0 || n+k != len(payload) || s.now().Unix() > int64(exp) {
		return nil, nil, ErrBadToken
	}
	a, err := s.AttachmentOf(ctx, int64(id), 0)
	if err != nil {
		return nil, nil, err
	}
	data, err := s.storage.Get(ctx, s.pool, a.key)
	if err != nil {
		return nil, nil, err
	}
	return a, data, nil
}

// UnsentAttachmentTTL is how long an upload may wait for the message that
// sends it before it is deleted.
const UnsentAttachmentTTL = 24 * time.Hour

// PurgeUnsentArgs deletes uploads that no message sent.
type PurgeUnsentArgs struct{}

// Kind is the job kind.
func (PurgeUnsentArgs) Kind() string { return "conversations.purge_unsent_attachments" }

// InsertOpts makes one run per period however many processes schedule it.
func (PurgeUnsentArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueConversations, UniqueOpts: river.UniqueOpts{ByPeriod: 30 * time.Minute}}
}

// PurgeUnsentWorker runs PurgeUnsentArgs.
type PurgeUnsentWorker struct {
	river.WorkerDefaults[PurgeUnsentArgs]
	Service *Service
}

// Work deletes uploads older than UnsentAttachmentTTL that no message
// names, with their bytes, in one transaction.
func (w *PurgeUnsentWorker) Work(ctx context.Context, _ *river.Job[PurgeUnsentArgs]) error {
	s := w.Service
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM attachments a
			WHERE a.created_at < now() - $1::interval
			  AND NOT EXISTS (SELECT 1 FROM conversation_messages m WHERE m.attachment_id = a.id)
			RETURNING storage_key`, UnsentAttachmentTTL.String())
		if err != nil {
			return fmt.Errorf("conversations: purge unsent attachments: %w", err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("conversations: purge unsent attachments: %w", err)
		}
		n = len(keys)
		return s.storage.Delete(ctx, tx, keys)
	})
	if err == nil && n > 0 {
		s.logger.Info("purged attachments no message sent", "attachments", n)
	}
	return err
}
