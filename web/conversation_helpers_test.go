package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/live"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/web"
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

// secondProcess is another Herald over the same database, as a second
// `herald serve` would be: its own pool, its own hub listening on its own
// connection, its own services.
func (b *testBundle) secondProcess() (*fiber.App, func()) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := pgxpool.NewWithConfig(ctx, b.pool.Config())
	if err != nil {
		b.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := live.NewHub(pool, live.Config{Channels: []string{conversations.PresenceChannel}, PollInterval: 5 * time.Second}, logger)
	go hub.Run(ctx)
	senders := apps.NewSenders(pool, b.store, delivery.Options{RootCAs: b.sim.CertPool()}, logger)
	conv := conversations.NewService(pool, dbtest.Inserter(pool), senders, conversations.Config{Secret: b.cfg.Secret,
		PublicURL: b.cfg.PublicURL}, logger)
	app := web.New(web.Deps{Config: b.cfg, Pool: pool, River: b.river, OptIn: b.optin, Apps: b.store, Users: b.users,
		Subscribers: subscribers.NewService(pool, dbtest.Inserter(pool), nil), Conversations: conv, Hub: hub, Webhooks: b.hooks,
		Logger: logger, Registry: prometheus.NewRegistry(), Ready: func(ctx context.Context) error { return pool.Ping(ctx) }})
	return app, func() { cancel(); pool.Close() }
}
