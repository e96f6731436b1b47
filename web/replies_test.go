package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// TestQuickReplies follows a quick reply from the button to the GDPR export
// and erasure.
func TestQuickReplies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PostedTwiceCountsOnceIsExportedAndErased", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		campaignID, subID, data := b.testSendReply()
		for i := range 2 { // a service worker retrying its POST
			r := b.postJSON("/public/v1/campaign-actions", "", map[string]string{"token": data["reply_token"], "action": "a0"})
			if r.status != http.StatusNoContent {
				t.Fatalf("post %d: %d %s", i+1, r.status, r.body)
			}
		}
		stats := b.do(http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d/stats", campaignID), b.marketer, "", nil).json(t)
		if stats["replies"].(float64) != 1 {
			t.Fatalf("stats %v, want one reply", stats)
		}

		exp := b.do(http.MethodGet, fmt.Sprintf("/api/v1/subscribers/%d/export", subID), b.admin, "", nil)
		if exp.status != http.StatusOK {
			t.Fatalf("export: %d %s", exp.status, exp.body)
		}
		var export struct {
			Conversations []struct {
				Messages []struct {
					Body string `json:"body"`
				} `json:"messages"`
			} `json:"conversations"`
			CampaignReplies []struct {
				CampaignID int64  `json:"campaign_id"`
				Action     string `json:"action"`
			} `json:"campaign_replies"`
		}
		if err := json.Unmarshal(exp.body, &export); err != nil {
			t.Fatal(err)
		}
		if len(export.Conversations) != 1 || len(export.Conversations[0].Messages) != 1 ||
			len(export.CampaignReplies) != 1 || export.CampaignReplies[0].CampaignID != campaignID || export.CampaignReplies[0].Action != "a0" {
			t.Fatalf("export %s", exp.body)
		}

		if r := b.do(http.MethodPost, fmt.Sprintf("/api/v1/subscribers/%d/erase", subID), b.admin, "", nil); r.status != http.StatusNoContent {
			t.Fatalf("erase: %d %s", r.status, r.body)
		}
		var left int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM campaign_replies WHERE subscriber_id = $1`, subID).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Fatalf("%d campaign replies survived erasure", left)
		}
	})
}
