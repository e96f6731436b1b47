package subscribers

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/invalid"
)

// maxUserAgentBytes bounds the user agent a consent record keeps.
const maxUserAgentBytes = 512

// ConsentAction is what a consent record proves.
type ConsentAction string

// Consent actions.
const (
	ActionOptInRequest ConsentAction = "opt_in_request"
	ActionConfirm      ConsentAction = "confirm"
	ActionUnsubscribe  ConsentAction = "unsubscribe"
	ActionErase        ConsentAction = "erase"
)

// ConsentSource is where a consent change came from.
type ConsentSource string

// Consent sources.
const (
	SourceWeb    ConsentSource = "web"    // the hosted page or the embed script
	SourceApp    ConsentSource = "app"    // a mobile app with verified identity
	SourceImport ConsentSource = "import" // a CSV import
	SourceAdmin  ConsentSource = "admin"  // the admin API
	SourceLink   ConsentSource = "link"   // a confirmation or unsubscribe link
	SourceSystem ConsentSource = "system" // Herald itself (erasure)
	// SourceKeyword is STOP or START written in a conversation.
	SourceKeyword ConsentSource = "keyword"
)

// ConsentRecord is one append-only entry of consent history.
type ConsentRecord struct {
	ID             int64         `json:"id"`
	SubscriberID   int64         `json:"subscriber_id"`
	ListID         *int64        `json:"list_id"`
	ListSlug       string        `json:"list"`
	Action         ConsentAction `json:"action"`
	Source         ConsentSource `json:"source"`
	IP             *netip.Prefix `json:"ip"`
	UserAgent      *string       `json:"user_agent"`
	ConsentVersion *int          `json:"consent_version"`
	Detail         *string       `json:"detail"`
	CreatedAt      time.Time     `json:"created_at"`
}

// Evidence is who and what stood behind a consent change.
type Evidence struct {
	Source    ConsentSource
	IP        netip.Addr
	UserAgent string
}

// RecordConsent appends consent records for a subscriber on lists (0 for no
// list, as for erasure) in one statement.
func RecordConsent(ctx context.Context, db database.DB, subscriberID int64, action ConsentAction, ev Evidence, consentVersion int, listIDs ...int64) error {
	var ip *netip.Addr
	if ev.IP.IsValid() {
		ip = &ev.IP
	}
	var ua *string
	if ev.UserAgent != "" {
		// Whatever a client sent must not fail the consent change with it:
		// PostgreSQL refuses NUL and invalid UTF-8 in text.
		s := invalid.Truncate(strings.ReplaceAll(ev.UserAgent, "\x00", "\uFFFD"), maxUserAgentBytes)
		ua = &s
	}
	var version *int
	if consentVersion > 0 {
		version = &consentVersion
	}
	if len(listIDs) == 0 {
		listIDs = []int64{0}
	}
	_, err := db.Exec(ctx, `INSERT INTO consent_records (subscriber_id, list_id, list_slug, action, source, ip, user_agent, consent_version)
		SELECT $1, nullif(ids.id, 0), coalesce(l.slug, ''), $3, $4, $5, $6,
			coalesce($7, CASE WHEN $3 IN ('opt_in_request', 'confirm') THEN l.consent_version END)
		FROM unnest($2::bigint[]) AS ids(id) LEFT JOIN lists l ON l.id = ids.id`,
		subscriberID, listIDs, action, ev.Source, ip, ua, version)
	if err != nil {
		return fmt.Errorf("subscribers: record consent: %w", err)
	}
	return nil
}

// ConsentRecords returns a subscriber's consent history, oldest first.
func ConsentRecords(ctx context.Context, db database.DB, subscriberID int64) ([]ConsentRecord, error) {
	return consentRecords(ctx, db, `WHERE subscriber_id = $1 ORDER BY id`, subscriberID)
}

// ConsentPage returns a page of a subscriber's consent history, newest
// first: the limit records before the record id before (0: the newest).
func ConsentPage(ctx context.Context, db database.DB, subscriberID, before int64, limit int) ([]ConsentRecord, error) {
	return consentRecords(ctx, db, `WHERE subscriber_id = $1 AND ($2::bigint = 0 OR id < $2::bigint) ORDER BY id DESC LIMIT $3`,
		subscriberID, before, limit)
}

func consentRecords(ctx context.Context, db database.DB, where string, args ...any) ([]ConsentRecord, error) {
	rows, err := db.Query(ctx, `SELECT id, subscriber_id, list_id, list_slug, action, source, ip, user_agent,
			consent_version, detail, created_at
		FROM consent_records `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("subscribers: consent records: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsentRecord, error) {
		var c ConsentRecord
		err := r.Scan(&c.ID, &c.SubscriberID, &c.ListID, &c.ListSlug, &c.Action, &c.Source, &c.IP, &c.UserAgent,
			&c.ConsentVersion, &c.Detail, &c.CreatedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("subscribers: consent records: %w", err)
	}
	return out, nil
}
