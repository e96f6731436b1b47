package apps

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/delivery"
)

// recordTimeout bounds writing a test push's record after the request
// that asked for it ended.
const recordTimeout = 5 * time.Second

// TestPushTitle is the title of the notification TestPush sends.
const TestPushTitle = "Herald test"

// TestPush sends one fixed notification to one device of the app, now,
// through the app's current credentials: the check an admin makes right
// after setting them. The outcome is returned as the provider gave it and
// recorded in the audit log (app.test_push). It is not a campaign or a
// message: nothing is retried, and nothing counts anywhere else.
func (s *Senders) TestPush(ctx context.Context, actor audit.Actor, app *App, d delivery.Device) (delivery.Outcome, error) {
	sender, err := s.For(ctx, app.ID)
	if err != nil {
		return delivery.Outcome{}, err
	}
	msg := &delivery.Message{Title: TestPushTitle, Body: "A test from " + app.Name + ": its " + string(d.Platform) + " credentials work.",
		Data: map[string]string{"herald_type": "test"}}
	o := sender.Send(ctx, msg, []delivery.Device{d})[0]
	// The record outlives the request: an admin who closed the page still
	// finds what the provider said.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err = pgx.BeginFunc(recordCtx, s.pool, func(tx pgx.Tx) error {
		return audit.Record(recordCtx, tx, actor, audit.Change{Action: "app.test_push", ObjectType: "app", ObjectID: app.Slug,
			Summary: map[string]any{"device_id": strconv.FormatInt(d.ID, 10), "platform": string(d.Platform),
				"class": string(o.Class), "status_code": o.StatusCode}})
	})
	if err != nil {
		return o, fmt.Errorf("apps: record test push: %w", err)
	}
	return o, nil
}
