package web_test

import (
	"context"
	"net/netip"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// convFixture is a subscriber with a device, a conversation token, a
// message and an attachment in the bundle's app.
type convFixture struct {
	subscriberID   int64
	device         subscribers.Device
	token          string
	conversationID int64
	messageID      int64
	attachmentID   int64
}

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 200)...)

func (b *testBundle) conversationFixture() convFixture {
	b.t.Helper()
	ctx := context.Background()
	sub, err := subscribers.Create(ctx, b.pool, subscribers.SubscriberParams{})
	if err != nil {
		b.t.Fatal(err)
	}
	d, err := subscribers.RegisterDevice(ctx, b.pool, sub.ID, b.appID, subscribers.DeviceParams{Platform: delivery.PlatformAPNs,
		Token: b.sim.NewAPNsToken(false), APNsTopic: "com.example.app"})
	if err != nil {
		b.t.Fatal(err)
	}
	f := convFixture{subscriberID: sub.ID, device: *d}
	f.token, _ = b.conv.SessionToken(sub.ID, b.appID)
	actor := audit.Subscriber(sub.ID, netip.Addr{})
	a, err := b.conv.Upload(ctx, actor, sub.ID, b.appID, pngBytes)
	if err != nil {
		b.t.Fatal(err)
	}
	m, _, err := b.conv.Send(ctx, actor, sub.ID, b.appID, conversations.SendRequest{Body: "matrix hello", AttachmentID: &a.ID})
	if err != nil {
		b.t.Fatal(err)
	}
	f.conversationID, f.messageID, f.attachmentID = m.ConversationID, m.ID, a.ID
	return f
}
