package optin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

func TestConfirmationWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type workerBundle struct {
		*testBundle
		*jobRunner
	}

	setup := func(t *testing.T) *workerBundle {
		t.Helper()
		b := setupService(t)
		return &workerBundle{testBundle: b, jobRunner: newJobRunner(t, b.svc)}
	}

	// subscribe asks for the bundle's list from an FCM device, as the app
	// user the token stands for (an anonymous request naming a known token
	// would be a stranger's: see the device ownership rule).
	subscribe := func(t *testing.T, b *workerBundle, token string) *optin.SubscribeResult {
		t.Helper()
		sec, err := apps.NewStore(testSecret).Secrets(ctx, dbtest.Pool(t), b.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		user := "user-" + token
		res, err := b.svc.Subscribe(ctx, audit.Public(netip.Addr{}), optin.SubscribeRequest{Identity: optin.Identity{App: b.app.Slug, ExternalID: user,
			IdentityHMAC: optin.IdentityHMAC(sec.IdentitySecret, user)}, List: b.list.Slug,
			Device: optin.DeviceRequest{Platform: "fcm", Token: token}}, optin.Client{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != subscribers.StatusPending {
			t.Fatalf("subscribe answered %s, want pending", res.Status)
		}
		return res
	}

	t.Run("DatabaseErrorIsRetriedNotSwallowed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := subscribe(t, b, b.sim.NewFCMToken())
		// The worker's service reads through a pool that is gone, as a job
		// does when PostgreSQL fails over under it.
		broken, err := pgxpool.NewWithConfig(ctx, b.pool.Config())
		if err != nil {
			t.Fatal(err)
		}
		broken.Close()
		svc := optin.NewService(broken, dbtest.Inserter(broken), apps.NewStore(testSecret), nil, &optin.SMTPMailer{}, testConfig, discard())

		push := rivertest.NewWorker(t, riverpgxv5.New(b.pool), &river.Config{Logger: discard()},
			river.Worker[optin.SendConfirmationArgs](&optin.ConfirmationWorker{Service: svc}))
		tx := dbtest.Tx(t)
		out, err := push.Work(ctx, t, tx, optin.SendConfirmationArgs{SubscriberID: res.SubscriberID, ListID: b.list.ID, DeviceID: res.DeviceID}, nil)
		if err == nil || out.EventKind != river.EventKindJobFailed {
			t.Fatalf("push confirmation on a failing database: %v, %v; want an error River retries", out.EventKind, err)
		}

		email := rivertest.NewWorker(t, riverpgxv5.New(b.pool), &river.Config{Logger: discard()},
			river.Worker[optin.SendConfirmationEmailArgs](&optin.ConfirmationEmailWorker{Service: svc}))
		out, err = email.Work(ctx, t, tx, optin.SendConfirmationEmailArgs{SubscriberID: res.SubscriberID, ListID: b.list.ID}, nil)
		if err == nil || out.EventKind != river.EventKindJobFailed {
			t.Fatalf("email confirmation on a failing database: %v, %v; want an error River retries", out.EventKind, err)
		}
		if n := b.smtp.count(); n != 0 {
			t.Fatalf("%d emails sent", n)
		}
	})

	t.Run("SubscribingAgainAfterLeavingGetsANewConfirmation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token := b.sim.NewFCMToken()
		res := subscribe(t, b, token)
		if n := b.workQueued(t, res.SubscriberID); n != 1 {
			t.Fatalf("%d confirmation jobs for the first request", n)
		}
		got := b.sim.Received("fcm", token)
		if len(got) != 1 {
			t.Fatalf("device received %d confirmations", len(got))
		}
		if _, err := b.svc.Confirm(ctx, audit.Public(netip.Addr{}), confirmToken(t, got[0].Payload), optin.Client{}); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.Unsubscribe(ctx, audit.Public(netip.Addr{}), res.SubscriberID, b.list.ID, subscribers.Evidence{Source: subscribers.SourceWeb}); err != nil {
			t.Fatal(err)
		}

		// Within the same minute: a new request all the same.
		again := subscribe(t, b, token)
		if again.SubscriberID != res.SubscriberID {
			t.Fatalf("the same device came back as subscriber %d, was %d", again.SubscriberID, res.SubscriberID)
		}
		if n := b.workQueued(t, res.SubscriberID); n != 1 {
			t.Fatalf("%d confirmation jobs for the new request, want 1", n)
		}
		got = b.sim.Received("fcm", token)
		if len(got) != 2 {
			t.Fatalf("device received %d confirmations, want 2", len(got))
		}
		if _, err := b.svc.Confirm(ctx, audit.Public(netip.Addr{}), confirmToken(t, got[1].Payload), optin.Client{}); err != nil {
			t.Fatalf("the new confirmation does not confirm: %v", err)
		}
	})

	t.Run("AskingTwiceWhilePendingSendsOneConfirmation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		token := b.sim.NewFCMToken()
		res := subscribe(t, b, token)
		subscribe(t, b, token) // a double tap, a reloaded page
		if n := b.workQueued(t, res.SubscriberID); n != 1 {
			t.Fatalf("%d confirmation jobs for one pending request, want 1", n)
		}
		if got := b.sim.Received("fcm", token); len(got) != 1 {
			t.Fatalf("device received %d confirmations, want 1", len(got))
		}
		recs, err := subscribers.ConsentRecords(ctx, b.pool, res.SubscriberID)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Fatalf("%d consent records for one request repeated at once, want 1", len(recs))
		}

		// A person who asks again later, their confirmation lost, gets another.
		if _, err := b.pool.Exec(ctx, `UPDATE memberships SET pending_at = pending_at - $3::interval
			WHERE list_id = $1 AND subscriber_id = $2`, b.list.ID, res.SubscriberID, "2 minutes"); err != nil {
			t.Fatal(err)
		}
		subscribe(t, b, token)
		if n := b.workQueued(t, res.SubscriberID); n != 1 {
			t.Fatalf("%d confirmation jobs for a request repeated after two minutes, want 1", n)
		}
		if got := b.sim.Received("fcm", token); len(got) != 2 {
			t.Fatalf("device received %d confirmations, want 2", len(got))
		}
	})
}

// jobRunner works the confirmation jobs a Service inserted, through River's
// test worker, one at a time and in the test's own goroutine.
type jobRunner struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
	push   *rivertest.Worker[optin.SendConfirmationArgs, pgx.Tx]
}

func newJobRunner(t *testing.T, svc *optin.Service) *jobRunner {
	t.Helper()
	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	return &jobRunner{pool: pool, client: client,
		push: rivertest.NewWorker(t, riverpgxv5.New(pool), &river.Config{Logger: discard()}, river.Worker[optin.SendConfirmationArgs](&optin.ConfirmationWorker{Service: svc}))}
}

// workQueued works every push confirmation job of a subscriber that has not
// run yet, and returns how many there were.
func (r *jobRunner) workQueued(t *testing.T, subscriberID int64) int {
	t.Helper()
	ctx := context.Background()
	rows, err := r.pool.Query(ctx, `SELECT id FROM river_job WHERE kind = $1 AND state = 'available'
		AND (args->>'subscriber_id')::bigint = $2 ORDER BY id`, optin.SendConfirmationArgs{}.Kind(), subscriberID)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		job, err := r.client.JobGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			res, err := r.push.WorkJob(ctx, t, tx, job)
			if err == nil && res.EventKind != river.EventKindJobCompleted {
				t.Fatalf("confirmation job %d: %s", id, res.EventKind)
			}
			return err
		})
		if err != nil {
			t.Fatalf("confirmation job %d: %v", id, err)
		}
	}
	return len(ids)
}

// confirmToken is the token of the confirmation link in an FCM message.
func confirmToken(t *testing.T, payload []byte) string {
	t.Helper()
	var m struct {
		Message struct {
			Data map[string]string `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	token, ok := strings.CutPrefix(m.Message.Data["confirm_url"], "http://herald.test/confirm/")
	if !ok {
		t.Fatalf("no confirmation link in %s", payload)
	}
	return token
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
