package apps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/delivery"
)

// recordTimeout bounds writing a test push's outcome after the request
// that asked for it ended.
const recordTimeout = 5 * time.Second

// TestPushTitle is the title of the notification TestPush sends.
const TestPushTitle = "Herald test"

// TestPushesPerMinute is how many test pushes one app takes a minute.
const TestPushesPerMinute = 10

// ErrTestPushLimit is returned when an app had TestPushesPerMinute test
// pushes in the last minute.
var ErrTestPushLimit = errors.New("apps: too many test pushes of this app; wait a minute")

// TestPush sends one fixed notification to one test device of the app
// (one an admin marked as such: a staff member's own phone or browser),
// now, through the app's current credentials: the check an admin makes
// right after setting them. The attempt is recorded in the audit log
// (app.test_push) before anything is sent, so a push that left is never
// unrecorded, and what the provider said after it (app.test_push_result).
// It is not a campaign or a message: nothing is retried, and nothing counts
// anywhere else.
func (s *Senders) TestPush(ctx context.Context, actor audit.Actor, app *App, d delivery.Device) (delivery.Outcome, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The lock makes the per-minute count exact across processes.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM apps WHERE id = $1 FOR UPDATE`, app.ID); err != nil {
			return fmt.Errorf("apps: lock app %d: %w", app.ID, err)
		}
		var recent int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE object_type = 'app' AND object_id = $1
			AND action = 'app.test_push' AND at > now() - interval '1 minute'`, app.Slug).Scan(&recent); err != nil {
			return fmt.Errorf("apps: count test pushes: %w", err)
		}
		if recent >= TestPushesPerMinute {
			return ErrTestPushLimit
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "app.test_push", ObjectType: "app", ObjectID: app.Slug,
			Summary: map[string]any{"device_id": strconv.FormatInt(d.ID, 10), "platform": string(d.Platform)}})
	})
	if err != nil {
		return delivery.Outcome{}, err
	}
	sender, err := s.For(ctx, app.ID)
	if err != nil {
		return delivery.Outcome{}, err
	}
	msg := &delivery.Message{Title: TestPushTitle, Body: "A test from " + app.Name + ": its " + string(d.Platform) + " credentials work.",
		Data: map[string]string{"herald_type": "test"}}
	o := sender.Send(ctx, msg, []delivery.Device{d})[0]
	// The outcome is kept also when the admin closed the page meanwhile.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err = pgx.BeginFunc(recordCtx, s.pool, func(tx pgx.Tx) error {
		return audit.Record(recordCtx, tx, actor, audit.Change{Action: "app.test_push_result", ObjectType: "app", ObjectID: app.Slug,
			Summary: map[string]any{"device_id": strconv.FormatInt(d.ID, 10), "platform": string(d.Platform),
				"class": string(o.Class), "status_code": o.StatusCode}})
	})
	if err != nil {
		return o, fmt.Errorf("apps: record test push outcome: %w", err)
	}
	return o, nil
}
