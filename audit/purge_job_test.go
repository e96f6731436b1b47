package audit_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/audit"
)

func TestPurgeOutboxWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	record := func(id string) {
		t.Helper()
		if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			return audit.Record(b.ctx, tx, audit.System("purge test"), audit.Change{Action: "purge.test", ObjectType: "purge", ObjectID: id})
		}); err != nil {
			t.Fatal(err)
		}
	}
	suffix := time.Now().Format(time.RFC3339Nano)
	old, recent := "old-"+suffix, "new-"+suffix
	record(old)
	record(recent)
	if _, err := b.pool.Exec(b.ctx, `UPDATE outbox SET at = now() - interval '73 hours' WHERE topic = 'purge.test' AND object_id = $1`, old); err != nil {
		t.Fatal(err)
	}
	w := &audit.PurgeOutboxWorker{DB: b.pool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := w.Work(b.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE topic = 'purge.test' AND object_id = $1`, old); n != 0 {
		t.Fatal("an event past the retention was kept")
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE topic = 'purge.test' AND object_id = $1`, recent); n != 1 {
		t.Fatal("a recent event was purged")
	}
}
