package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Broadcast is a campaign as one subscriber received it: its text in the
// subscriber's language, as the web widget shows it beside their
// conversation.
type Broadcast struct {
	CampaignID int64     `json:"campaign_id"`
	Title      string    `json:"title"`
	Body       string    `json:"body"`
	URL        string    `json:"url,omitempty"`
	ImageURL   string    `json:"image_url,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// Received returns the campaigns of an app that reached at least one of the
// subscriber's devices, newest first: those with a campaign id below
// before (0 for the newest), at most limit (20 when 0). A campaign whose push may or
// may not have arrived (unknown) is not listed: the widget shows what the
// subscriber was shown.
func (s *Service) Received(ctx context.Context, subscriberID, appID, before int64, limit int) ([]Broadcast, error) {
	const query = `
		SELECT c.id, c.content, r.received_at, coalesce(s.locale, '')
		FROM (SELECT campaign_id, max(finished_at) AS received_at
		      FROM deliveries
		      WHERE subscriber_id = $1 AND status = 'delivered' AND ($3::bigint = 0 OR campaign_id < $3::bigint)
		      GROUP BY campaign_id) r
		JOIN campaigns c ON c.id = r.campaign_id AND c.app_id = $2
		JOIN subscribers s ON s.id = $1
		ORDER BY c.id DESC
		LIMIT $4`
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.pool.Query(ctx, query, subscriberID, appID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("campaigns: received broadcasts: %w", err)
	}
	defer rows.Close()
	out := []Broadcast{}
	for rows.Next() {
		var (
			b       Broadcast
			raw     []byte
			locale  string
			content Content
		)
		if err := rows.Scan(&b.CampaignID, &raw, &b.ReceivedAt, &locale); err != nil {
			return nil, fmt.Errorf("campaigns: unable to fetch broadcast: %w", err)
		}
		if err := json.Unmarshal(raw, &content); err != nil {
			return nil, fmt.Errorf("campaigns: broadcast %d content: %w", b.CampaignID, err)
		}
		// The browser's text: the widget is a web page.
		t := content.variant(locale)
		if o, ok := content.Overrides["webpush"]; ok {
			t = overlay(t, o)
		}
		b.Title, b.Body, b.URL, b.ImageURL = t.Title, t.Body, t.URL, t.ImageURL
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("campaigns: unable to fetch broadcast: %w", err)
	}
	return out, nil
}
