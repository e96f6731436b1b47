package campaigns

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/invalid"
)

// receiptToken is what a device reports a campaign's receipts with. It
// names the campaign and the device, so that each device counts once.
func (s *Service) receiptToken(campaignID, deviceID int64) string {
	payload := binary.AppendUvarint([]byte{'d'}, uint64(campaignID))
	return s.sign(binary.AppendUvarint(payload, uint64(deviceID)))
}

// Receipt counts a confirmed delivery or an open ("delivered" or "read")
// that a device's app or service worker reported with the message's
// receipt token. Counts are per campaign, never per person: a device is
// remembered only as a keyed digest in campaign_receipts, which cannot be
// read back to the device, so that a receipt reported again counts once.
func (s *Service) Receipt(ctx context.Context, token, kind string) error {
	if kind != "delivered" && kind != "read" {
		return invalid.Field("event", "must be delivered or read")
	}
	payload, err := s.verify(token)
	if err != nil || payload[0] != 'd' {
		return ErrBadToken
	}
	campaignID, n := binary.Uvarint(payload[1:])
	if n <= 0 {
		return ErrBadToken
	}
	mac := hmac.New(sha256.New, s.clickKey)
	mac.Write([]byte("receipt digest"))
	mac.Write(payload)
	digest := mac.Sum(nil)[:16]
	kinds := []string{"delivered"}
	if kind == "read" {
		kinds = append(kinds, "read") // an open proves the delivery too
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO campaign_receipts (campaign_id, kind, digest)
			SELECT $1, k, $3 FROM unnest($2::text[]) AS k WHERE EXISTS (SELECT 1 FROM campaigns WHERE id = $1)
			ON CONFLICT DO NOTHING RETURNING kind`, int64(campaignID), kinds, digest)
		if err != nil {
			return fmt.Errorf("campaigns: receipt: %w", err)
		}
		added, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("campaigns: receipt: %w", err)
		}
		var delivered, read int
		for _, k := range added {
			if k == "delivered" {
				delivered++
			} else {
				read++
			}
		}
		if delivered+read == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET confirmed_deliveries = confirmed_deliveries + $2, opens = opens + $3
			WHERE id = $1`, int64(campaignID), delivered, read); err != nil {
			return fmt.Errorf("campaigns: count receipt: %w", err)
		}
		return nil
	})
}
