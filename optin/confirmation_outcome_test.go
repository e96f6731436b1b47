package optin

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/riverqueue/river"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// The delivery outcomes that say "the request may or may not have reached the
// provider" are not produced by the simulator on demand, so these tests hand
// settle the outcome a send returned.
func TestConfirmationOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		logs   *logRecorder
		worker *ConfirmationWorker
		args   SendConfirmationArgs
		dev    *subscribers.Device
	}

	setup := func(t *testing.T) *testBundle {
		t.Helper()
		logs := newLogRecorder()
		svc := NewService(dbtest.Pool(t), nil, nil, nil, nil, Config{}, slog.New(logs))
		dev := &subscribers.Device{ID: 7, SubscriberID: 3, Platform: delivery.PlatformFCM}
		return &testBundle{logs: logs, worker: &ConfirmationWorker{Service: svc}, dev: dev,
			args: SendConfirmationArgs{SubscriberID: 3, ListID: 5, DeviceID: 7}}
	}

	// requireRetry checks that err makes River run the job again later: an
	// error that is neither a cancel nor a snooze.
	requireRetry := func(t *testing.T, err error) {
		t.Helper()
		var cancel *river.JobCancelError
		var snooze *river.JobSnoozeError
		if err == nil || errors.As(err, &cancel) || errors.As(err, &snooze) {
			t.Fatalf("settle returned %v, want an error River retries", err)
		}
	}

	t.Run("NotSentIsRetried", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := b.worker.settle(ctx, b.args, b.dev, delivery.Outcome{DeviceID: 7, Class: delivery.ClassNotSent, Reason: "context deadline exceeded"})
		requireRetry(t, err)
		if r := b.logs.find("confirmation"); r == nil || r.Level != slog.LevelWarn || !strings.Contains(r.Message, "not sent") {
			t.Fatalf("log %+v, want a warning that it was not sent", r)
		}
	})

	t.Run("UnknownIsRetriedWithAWarning", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := b.worker.settle(ctx, b.args, b.dev, delivery.Outcome{DeviceID: 7, Class: delivery.ClassUnknown, Reason: "connection reset after the request was written"})
		requireRetry(t, err)
		r := b.logs.find("confirmation")
		if r == nil || r.Level != slog.LevelWarn {
			t.Fatalf("log %+v, want a warning", r)
		}
		if got := r.attr("reason"); got != "connection reset after the request was written" {
			t.Fatalf("warning's reason is %q", got)
		}
	})

	t.Run("DeliveredCompletes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if err := b.worker.settle(ctx, b.args, b.dev, delivery.Outcome{DeviceID: 7, Class: delivery.ClassDelivered}); err != nil {
			t.Fatal(err)
		}
		if r := b.logs.find("confirmation sent"); r == nil || r.Level != slog.LevelInfo {
			t.Fatalf("log %+v", r)
		}
	})
}

// logRecorder is a slog.Handler that keeps what it is given; loggers made
// from it with With share its records.
type logRecorder struct {
	store *logStore
	attrs []slog.Attr
}

type logStore struct {
	mu      sync.Mutex
	records []loggedRecord
}

type loggedRecord struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

func (r loggedRecord) attr(key string) string { return r.Attrs[key] }

func newLogRecorder() *logRecorder { return &logRecorder{store: &logStore{}} }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := loggedRecord{Level: r.Level, Message: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	h.store.records = append(h.store.records, rec)
	return nil
}

func (h *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecorder{store: h.store, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// find returns the first record whose message contains s.
func (h *logRecorder) find(s string) *loggedRecord {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for i := range h.store.records {
		if strings.Contains(h.store.records[i].Message, s) {
			return &h.store.records[i]
		}
	}
	return nil
}
