package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/webhooks"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type testBundle struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	svc   *webhooks.Service
	admin audit.Actor
}

func setup(t *testing.T, allowPrivate bool) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	svc := webhooks.NewService(pool, dbtest.Inserter(pool), webhooks.Config{Secret: []byte(strings.Repeat("w", 32)),
		AllowPrivate: allowPrivate, Timeout: 5 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &testBundle{ctx: context.Background(), pool: pool, svc: svc, admin: audit.User(1, "admin", "admin@example.com", netip.Addr{})}
}

// event records an outbox event as a service would.
func (b *testBundle) event(t *testing.T, topic string, payload map[string]any) {
	t.Helper()
	err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		return audit.Record(b.ctx, tx, audit.System("test"), audit.Change{Action: topic, ObjectType: "conversation",
			ObjectID: "1", Event: payload, NoEvent: false})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dispatch runs the dispatcher until the outbox is drained.
func (b *testBundle) dispatch(t *testing.T) {
	t.Helper()
	if err := b.svc.Dispatch(b.ctx); err != nil {
		t.Fatal(err)
	}
}

// dispatched dispatches until endpointID has at least n deliveries: an
// event becomes readable once every older transaction in the cluster has
// ended, which other tests' transactions may hold up for a moment.
func (b *testBundle) dispatched(t *testing.T, endpointID int64, n int) []int64 {
	t.Helper()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		b.dispatch(t)
		ids := b.deliveries(t, endpointID)
		if len(ids) >= n {
			return ids
		}
		select {
		case <-tick.C:
		case <-deadline:
			return ids
		}
	}
}

func (b *testBundle) deliveries(t *testing.T, endpointID int64) []int64 {
	t.Helper()
	rows, _ := b.pool.Query(b.ctx, `SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id`, endpointID)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// deliver works one delivery as River would on attempt n.
func (b *testBundle) deliver(id int64, attempt int) error {
	job := &river.Job[webhooks.DeliverArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: 36},
		Args: webhooks.DeliverArgs{DeliveryID: id}}
	return (&webhooks.DeliverWorker{Service: b.svc}).Work(b.ctx, job)
}

func TestService(t *testing.T) {
	t.Parallel()

	t.Run("URLsAreValidated", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		for _, u := range []string{"http://127.0.0.1/hook", "https://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
			"http://[::1]:8080/", "https://user:pw@example.com/hook", "ftp://example.com/x", "https://example.com/a\x00b",
			"https://example.com/" + strings.Repeat("a", 3000), "/relative", "https://192.168.1.1/"} {
			_, _, err := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: u})
			if ie, ok := invalid.As(err); !ok || ie.Field != "url" {
				t.Errorf("%.40q: %v, want a problem with url", u, err)
			}
		}
		_, _, err := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: "https://crm.example.com/hook", Events: []string{"nope"}})
		if ie, ok := invalid.As(err); !ok || ie.Field != "events[0]" {
			t.Errorf("unknown event: %v", err)
		}
		if _, _, err := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: "https://crm.example.com/hook"}); err != nil {
			t.Fatalf("a public URL: %v", err)
		}
	})

	t.Run("SignedDeliveriesVerifyAndRetriesSucceedOnceTheReceiverRecovers", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		var calls atomic.Int32
		var secret string
		var mu sync.Mutex
		var verified []string
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if calls.Add(1) <= 2 {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err := webhooks.Verify(secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			verified = append(verified, string(body))
		}))
		defer receiver.Close()
		ep, s, err := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: receiver.URL + "/hook", Events: []string{"message.received"}})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		secret = s
		mu.Unlock()
		b.event(t, "conversation.message", map[string]any{"author": "agent", "subscriber_id": 7})      // not for webhooks
		b.event(t, "conversation.message", map[string]any{"author": "subscriber", "subscriber_id": 7}) // message.received
		ids := b.dispatched(t, ep.ID, 1)
		if len(ids) != 1 {
			t.Fatalf("%d deliveries, want 1 (message.received only)", len(ids))
		}
		for attempt := 1; attempt <= 2; attempt++ {
			if err := b.deliver(ids[0], attempt); err == nil {
				t.Fatalf("attempt %d succeeded against a failing receiver", attempt)
			}
		}
		log, _ := b.svc.Deliveries(b.ctx, ep.ID, 0, 10)
		if log[0].Status != "failed" || log[0].ResponseStatus == nil || *log[0].ResponseStatus != 503 ||
			!strings.Contains(log[0].ResponseExcerpt, "maintenance") {
			t.Fatalf("log after failures: %+v", log[0])
		}
		if err := b.deliver(ids[0], 3); err != nil {
			t.Fatalf("attempt 3: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(verified) != 1 || !strings.Contains(verified[0], `"type":"message.received"`) {
			t.Fatalf("verified %v", verified)
		}
		log, _ = b.svc.Deliveries(b.ctx, ep.ID, 0, 10)
		if log[0].Status != "succeeded" || log[0].Attempts != 3 || log[0].LatencyMS == nil {
			t.Fatalf("log after recovery: %+v", log[0])
		}
		if ep, _ = b.svc.Get(b.ctx, ep.ID); ep.FailingSince != nil {
			t.Fatal("a success left the endpoint failing")
		}
		// A forged body does not verify.
		h := http.Header{"Herald-Webhook-Id": {"whd_1"}, "Herald-Webhook-Timestamp": {"1"}, "Herald-Signature": {"v1=00"}}
		if err := webhooks.Verify(secret, h, []byte("{}"), time.Minute, time.Unix(1, 0)); !errors.Is(err, webhooks.ErrSignature) {
			t.Fatalf("forged: %v", err)
		}
	})

	t.Run("RotationSignsWithBothSecretsDuringTheOverlap", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		var header http.Header
		var body []byte
		var mu sync.Mutex
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			header, body = r.Header.Clone(), must(io.ReadAll(r.Body))
		}))
		defer receiver.Close()
		ep, oldSecret, err := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: receiver.URL, Events: []string{"conversation.resolved"}})
		if err != nil {
			t.Fatal(err)
		}
		newSecret, err := b.svc.RotateSecret(b.ctx, b.admin, ep.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		b.event(t, "conversation.resolve", map[string]any{"subscriber_id": 8})
		if err := b.deliver(b.dispatched(t, ep.ID, 1)[0], 1); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range []string{oldSecret, newSecret} {
			if err := webhooks.Verify(s, header, body, time.Minute, time.Now()); err != nil {
				t.Fatalf("secret %q: %v (%s)", s[:10], err, header.Get("Herald-Signature"))
			}
		}
	})

	t.Run("EachEventIsDispatchedOnceByConcurrentDispatchers", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		ep, _, err := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: "https://crm.example.com/" + t.Name()})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			b.event(t, "campaign.finish", map[string]any{})
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { b.dispatch(t) })
		}
		wg.Wait()
		b.dispatched(t, ep.ID, 20)
		var dupes int
		if err := b.pool.QueryRow(b.ctx, `SELECT count(*) - count(DISTINCT event_id) FROM webhook_deliveries WHERE endpoint_id = $1`,
			ep.ID).Scan(&dupes); err != nil {
			t.Fatal(err)
		}
		if n := len(b.deliveries(t, ep.ID)); n < 20 || dupes != 0 {
			t.Fatalf("%d deliveries with %d duplicates, want every event once", n, dupes)
		}
	})

	t.Run("ADayOfFailuresDisablesTheEndpointWithANotice", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		}))
		defer receiver.Close()
		ep, _, err := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: receiver.URL, Events: []string{"subscriber.erased"}})
		if err != nil {
			t.Fatal(err)
		}
		b.event(t, "subscriber.erase", map[string]any{"subscriber_id": 9})
		id := b.dispatched(t, ep.ID, 1)[0]
		if _, err := b.pool.Exec(b.ctx, `UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours' WHERE id = $1`, ep.ID); err != nil {
			t.Fatal(err)
		}
		var cancel *river.JobCancelError
		if err := b.deliver(id, 30); !errors.As(err, &cancel) {
			t.Fatalf("after a day of failures: %v, want the job cancelled", err)
		}
		if ep, _ = b.svc.Get(b.ctx, ep.ID); ep.Enabled || ep.DisabledReason == "" {
			t.Fatalf("endpoint %+v, want disabled with a reason", ep)
		}
		var notices int
		b.pool.QueryRow(b.ctx, `SELECT count(*) FROM outbox WHERE topic = 'webhook.disable' AND object_id = $1`, fmt.Sprint(ep.ID)).Scan(&notices)
		if notices != 1 {
			t.Fatalf("%d notices", notices)
		}
		// Redelivery makes a new delivery; enabling clears the failures.
		if _, err := b.svc.Update(b.ctx, b.admin, ep.ID, webhooks.EndpointUpdate{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		d, err := b.svc.Redeliver(b.ctx, b.admin, ep.ID, id)
		if err != nil || d.ID == id || d.Status != "pending" {
			t.Fatalf("redeliver: %+v %v", d, err)
		}
	})

	t.Run("ErasureRemovesDeliveriesAboutThePerson", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		ep, _, _ := b.svc.Create(b.ctx, b.admin, webhooks.NewEndpoint{URL: "https://crm.example.com/erase"})
		b.event(t, "membership.confirm", map[string]any{"subscriber_id": 424242})
		if len(b.dispatched(t, ep.ID, 1)) == 0 {
			t.Fatal("no delivery")
		}
		if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error { return webhooks.EraseSubscriber(b.ctx, tx, 424242) }); err != nil {
			t.Fatal(err)
		}
		var left int
		b.pool.QueryRow(b.ctx, `SELECT count(*) FROM webhook_deliveries WHERE subscriber_id = 424242`).Scan(&left)
		if left != 0 {
			t.Fatal("deliveries about an erased person survived")
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }
