package campaigns

import (
	"context"
	"fmt"
)

// Stats is a campaign's progress and results.
type Stats struct {
	Status       Status `json:"status"`
	AudienceSize *int64 `json:"audience_size"`
	// Sent counts devices a send was attempted for (delivery rows).
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	// Unknown counts devices claimed by a process that stopped before it
	// recorded the outcome: they may or may not have the message.
	Unknown            int64            `json:"unknown"`
	InFlight           int64            `json:"in_flight"`
	FailedByReason     map[string]int64 `json:"failed_by_reason"`
	DevicesDeactivated int64            `json:"devices_deactivated"`
	Batches            map[string]int64 `json:"batches"`
	Clicks             int64            `json:"clicks"`
	ActionTaps         map[string]int64 `json:"action_taps"`
	Replies            int64            `json:"replies"`
}

// Stats reads a campaign's counters.
func (s *Service) Stats(ctx context.Context, id int64) (*Stats, error) {
	st := &Stats{FailedByReason: map[string]int64{}, Batches: map[string]int64{}, ActionTaps: map[string]int64{}}
	err := s.pool.QueryRow(ctx, `SELECT status, audience_size, clicks, action_taps, replies FROM campaigns WHERE id = $1`, id).
		Scan(&st.Status, &st.AudienceSize, &st.Clicks, &st.ActionTaps, &st.Replies)
	if err != nil {
		return nil, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `SELECT status, coalesce(outcome, ''), count(*) FROM deliveries WHERE campaign_id = $1 GROUP BY 1, 2`, id)
	if err != nil {
		return nil, fmt.Errorf("campaigns: stats: %w", err)
	}
	for rows.Next() {
		var status, outcome string
		var n int64
		if err := rows.Scan(&status, &outcome, &n); err != nil {
			return nil, err
		}
		st.Sent += n
		switch status {
		case "delivered":
			st.Delivered += n
		case "failed":
			st.Failed += n
			st.FailedByReason[outcome] += n
			if outcome == "device_gone" {
				st.DevicesDeactivated += n
			}
		case "unknown":
			st.Unknown += n
		case "claimed":
			st.InFlight += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.pool.Query(ctx, `SELECT state, count(*) FROM campaign_batches WHERE campaign_id = $1 GROUP BY 1`, id)
	if err != nil {
		return nil, fmt.Errorf("campaigns: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		rows.Scan(&state, &n)
		st.Batches[state] = n
	}
	return st, rows.Err()
}
