package campaigns_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/herald-im/herald/campaigns"
)

func batchJob(campaignID int64, batch, attempt int) *river.Job[campaigns.BatchArgs] {
	return &river.Job[campaigns.BatchArgs]{JobRow: &rivertype.JobRow{Attempt: attempt},
		Args: campaigns.BatchArgs{CampaignID: campaignID, Batch: batch}}
}

// riverOf is an insert-only client for services made inside a test.
func riverOf(t *testing.T, b *testBundle) *river.Client[pgx.Tx] {
	c, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func campaignQueues(extra ...string) map[string]river.QueueConfig {
	q := campaigns.Queues(8)
	for _, name := range extra {
		q[name] = river.QueueConfig{MaxWorkers: 2}
	}
	return q
}
