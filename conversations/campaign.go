package conversations

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
)

// CampaignReplyInTx lands a subscriber's quick reply to a campaign in their
// conversation with the campaign's app, as a message linked to the
// campaign and the button, in tx (the transaction that counts the reply).
// A person replies once per campaign and button: a reply posted again (a
// service worker retrying) adds nothing and reports added false, so the
// caller counts it once. A subscriber who was erased or blocked is
// dropped the same way.
func CampaignReplyInTx(ctx context.Context, tx pgx.Tx, actor audit.Actor, subscriberID, appID, campaignID int64, action, body string) (*Message, bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO campaign_replies (campaign_id, subscriber_id, action)
		SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM subscribers WHERE id = $2 AND state = 'active')
		ON CONFLICT DO NOTHING`, campaignID, subscriberID, action)
	if err != nil {
		return nil, false, fmt.Errorf("conversations: record reply: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, false, nil
	}
	m, _, err := receive(ctx, tx, actor, inbound{subscriberID: subscriberID, appID: appID, body: body,
		clientKey: fmt.Sprintf("campaign:%d:%s", campaignID, action), origin: OriginCampaign,
		campaignID: &campaignID, action: &action})
	if errors.Is(err, errDuplicate) || errors.Is(err, ErrSubscriberGone) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return m, true, nil
}
