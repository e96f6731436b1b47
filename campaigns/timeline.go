package campaigns

import (
	"context"
	"fmt"
	"time"
)

// TimelineBucket is the width of the rows deliveries over time are kept in.
const TimelineBucket = 10 * time.Second

// timelinePoints is about how many points a timeline has at most: a longer
// campaign's buckets are merged into wider ones.
const timelinePoints = 120

// Timeline is a campaign's outcomes over time.
type Timeline struct {
	// BucketSeconds is the width of each point.
	BucketSeconds int64           `json:"bucket_seconds"`
	Points        []TimelinePoint `json:"points"`
}

// TimelinePoint is the outcomes recorded in one bucket, starting at At.
type TimelinePoint struct {
	At        time.Time `json:"at"`
	Delivered int64     `json:"delivered"`
	Failed    int64     `json:"failed"`
	Unknown   int64     `json:"unknown"`
}

// Timeline returns a campaign's deliveries over time, from the counters
// kept as outcomes are written (campaign_delivery_timeline): its cost
// follows the campaign's duration, never its number of deliveries.
func (s *Service) Timeline(ctx context.Context, id int64) (*Timeline, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	var first, last *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(bucket), max(bucket) FROM campaign_delivery_timeline WHERE campaign_id = $1`,
		id).Scan(&first, &last); err != nil {
		return nil, fmt.Errorf("campaigns: timeline span: %w", err)
	}
	tl := &Timeline{BucketSeconds: int64(TimelineBucket / time.Second), Points: []TimelinePoint{}}
	if first == nil {
		return tl, nil
	}
	width := TimelineBucket
	if span := last.Sub(*first); span > timelinePoints*TimelineBucket {
		width = (span/timelinePoints + TimelineBucket - 1).Truncate(TimelineBucket)
	}
	tl.BucketSeconds = int64(width / time.Second)
	const query = `
		SELECT date_bin(make_interval(secs => $2), bucket, timestamptz '2000-01-01') AS at,
			sum(delivered)::bigint, sum(failed)::bigint, sum(unknown)::bigint
		FROM campaign_delivery_timeline
		WHERE campaign_id = $1
		GROUP BY 1
		ORDER BY 1`
	rows, err := s.pool.Query(ctx, query, id, width.Seconds())
	if err != nil {
		return nil, fmt.Errorf("campaigns: timeline: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p TimelinePoint
		if err := rows.Scan(&p.At, &p.Delivered, &p.Failed, &p.Unknown); err != nil {
			return nil, fmt.Errorf("campaigns: unable to fetch timeline point: %w", err)
		}
		tl.Points = append(tl.Points, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("campaigns: timeline: %w", err)
	}
	return tl, nil
}
