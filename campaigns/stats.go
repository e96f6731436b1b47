package campaigns

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Stats is a campaign's progress and results.
type Stats struct {
	Status       Status `json:"status"`
	AudienceSize *int64 `json:"audience_size"`
	// Sent counts devices a send was attempted for (delivery rows).
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	// Unknown counts devices whose outcome is not known: the request may
	// have reached the provider (a crash, a shutdown's grace period running
	// out, a request cut after it was written).
	Unknown int64 `json:"unknown"`
	// Resent counts devices that were sent the campaign again after an
	// unknown outcome, with the same collapse key.
	Resent int64 `json:"resent"`
	// ThrottledWaiting counts throttled devices the campaign will try again
	// when their provider's retry time comes.
	ThrottledWaiting   int64            `json:"throttled_waiting"`
	InFlight           int64            `json:"in_flight"`
	FailedByReason     map[string]int64 `json:"failed_by_reason"`
	DevicesDeactivated int64            `json:"devices_deactivated"`
	Batches            map[string]int64 `json:"batches"`
	RetryRounds        map[string]int64 `json:"retry_rounds"`
	// Mended counts disagreements the reconciler mended for this campaign.
	Mended int64 `json:"mended"`
	Clicks int64 `json:"clicks"`
	// ConfirmedDeliveries and Opens are receipts the devices reported, once
	// per device, counted without recording who.
	ConfirmedDeliveries int64            `json:"confirmed_deliveries"`
	Opens               int64            `json:"opens"`
	ActionTaps          map[string]int64 `json:"action_taps"`
	Replies             int64            `json:"replies"`
	// ByPlatform splits the delivery figures by provider.
	ByPlatform map[string]*PlatformStats `json:"by_platform"`
}

// PlatformStats are one provider's share of a campaign's deliveries.
type PlatformStats struct {
	Sent           int64            `json:"sent"`
	Delivered      int64            `json:"delivered"`
	Failed         int64            `json:"failed"`
	Unknown        int64            `json:"unknown"`
	InFlight       int64            `json:"in_flight"`
	FailedByReason map[string]int64 `json:"failed_by_reason"`
}

// Stats reads a campaign's counters. Its cost does not grow with the
// campaign: the delivery figures are totals kept as the outcomes are
// written (campaign_delivery_counts), not a count of the delivery rows, so
// they stay when the rows expire.
func (s *Service) Stats(ctx context.Context, id int64) (*Stats, error) {
	st := &Stats{FailedByReason: map[string]int64{}, Batches: map[string]int64{}, RetryRounds: map[string]int64{},
		ActionTaps: map[string]int64{}, ByPlatform: map[string]*PlatformStats{}}
	err := s.pool.QueryRow(ctx, `SELECT status, audience_size, clicks, action_taps, replies, mended, confirmed_deliveries, opens
		FROM campaigns WHERE id = $1`, id).
		Scan(&st.Status, &st.AudienceSize, &st.Clicks, &st.ActionTaps, &st.Replies, &st.Mended, &st.ConfirmedDeliveries, &st.Opens)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("campaigns: stats of %d: %w", id, err)
	}
	if err := s.deliveryCounts(ctx, id, st); err != nil {
		return nil, err
	}
	for table, into := range map[string]map[string]int64{"campaign_batches": st.Batches, "campaign_retries": st.RetryRounds} {
		if err := s.stateCounts(ctx, table, id, into); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (s *Service) deliveryCounts(ctx context.Context, id int64, st *Stats) error {
	rows, err := s.pool.Query(ctx, `
		SELECT platform, status, outcome, sum(n)::bigint, sum(resent)::bigint, sum(waiting)::bigint
		FROM campaign_delivery_counts
		WHERE campaign_id = $1
		GROUP BY 1, 2, 3`, id)
	if err != nil {
		return fmt.Errorf("campaigns: stats of %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var platform, status, outcome string
		var n, resent, waiting int64
		if err := rows.Scan(&platform, &status, &outcome, &n, &resent, &waiting); err != nil {
			return fmt.Errorf("campaigns: stats of %d: %w", id, err)
		}
		if n == 0 && resent == 0 && waiting == 0 {
			continue // a group every row has left
		}
		p := st.platform(platform)
		p.Sent += n
		st.Sent += n
		st.Resent += resent
		st.ThrottledWaiting += waiting
		switch status {
		case "delivered":
			st.Delivered += n
			p.Delivered += n
		case "failed":
			st.Failed += n
			st.FailedByReason[outcome] += n
			p.Failed += n
			p.FailedByReason[outcome] += n
			if outcome == "device_gone" {
				st.DevicesDeactivated += n
			}
		case "unknown":
			st.Unknown += n
			p.Unknown += n
		case "claimed":
			st.InFlight += n
			p.InFlight += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("campaigns: stats of %d: %w", id, err)
	}
	// Devices of slices claimed and not yet recorded have no row yet: at
	// most one slice per running batch.
	rows, err = s.pool.Query(ctx, `SELECT platform, sum(cardinality(device_ids))::bigint FROM campaign_slices
		WHERE campaign_id = $1 GROUP BY 1`, id)
	if err != nil {
		return fmt.Errorf("campaigns: stats of %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var platform string
		var n int64
		if err := rows.Scan(&platform, &n); err != nil {
			return fmt.Errorf("campaigns: stats of %d: %w", id, err)
		}
		p := st.platform(platform)
		st.Sent, st.InFlight, p.Sent, p.InFlight = st.Sent+n, st.InFlight+n, p.Sent+n, p.InFlight+n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("campaigns: stats of %d: %w", id, err)
	}
	return nil
}

// platform is the platform's share of st, made on first use.
func (st *Stats) platform(name string) *PlatformStats {
	p := st.ByPlatform[name]
	if p == nil {
		p = &PlatformStats{FailedByReason: map[string]int64{}}
		st.ByPlatform[name] = p
	}
	return p
}

// stateCounts counts a campaign's batches or retry rounds by state.
func (s *Service) stateCounts(ctx context.Context, table string, id int64, into map[string]int64) error {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM `+table+` WHERE campaign_id = $1 GROUP BY 1`, id)
	if err != nil {
		return fmt.Errorf("campaigns: stats of %d (%s): %w", id, table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return fmt.Errorf("campaigns: stats of %d (%s): %w", id, table, err)
		}
		into[state] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("campaigns: stats of %d (%s): %w", id, table, err)
	}
	return nil
}
