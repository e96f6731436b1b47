package campaigns

import (
	"context"
	"fmt"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// TestSendResult is one device's outcome of a test send.
type TestSendResult struct {
	SubscriberID int64            `json:"subscriber_id"`
	DeviceID     int64            `json:"device_id"`
	Outcome      delivery.Outcome `json:"outcome"`
}

// TestSend sends a draft or scheduled campaign now to named subscribers'
// active devices of its app, whatever their lists; nothing is recorded as a
// delivery of the campaign.
func (s *Service) TestSend(ctx context.Context, id int64, subscriberIDs []int64) ([]TestSendResult, error) {
	if len(subscriberIDs) == 0 || len(subscriberIDs) > 20 {
		return nil, invalid.Field("subscriber_ids", "name 1 to 20 subscribers")
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status != StatusDraft && c.Status != StatusScheduled {
		return nil, fmt.Errorf("%w: test sends are for draft and scheduled campaigns", ErrTransition)
	}
	sender, err := s.senders.For(ctx, c.AppID)
	if err != nil {
		return nil, err
	}
	var out []TestSendResult
	for _, subID := range subscriberIDs {
		sub, err := subscribers.Get(ctx, s.pool, subID)
		if err != nil {
			return nil, invalid.Fieldf("subscriber_ids", "no subscriber %d", subID)
		}
		devs, err := subscribers.Devices(ctx, s.pool, subID)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			if !d.Active || d.AppID != c.AppID {
				continue
			}
			msg := c.Content.message(c.Content.variantKey(sub.Locale), d.Platform, s.clickURL(c.ID, c.Content.variantKey(sub.Locale), d.Platform))
			msg.Title = "[Test] " + msg.Title
			dd := d.ToDelivery()
			dd.Vars = map[string]string{"unsubscribe_url": s.optin.UnsubscribeURL(subID, 0), "reply_token": s.replyToken(c.ID, subID)}
			o := sender.Send(ctx, msg, []delivery.Device{dd})[0]
			out = append(out, TestSendResult{SubscriberID: subID, DeviceID: d.ID, Outcome: o})
		}
	}
	return out, nil
}
