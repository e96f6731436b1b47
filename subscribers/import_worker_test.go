package subscribers_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/subscribers"
)

func TestImportWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		logs *syncBuffer
		pool *pgxpool.Pool
	}

	setup := func(t *testing.T) *testBundle {
		t.Helper()
		return &testBundle{logs: &syncBuffer{}, pool: dbtest.Pool(t)}
	}

	// upload stores a CSV of n new subscribers and returns the import.
	upload := func(t *testing.T, b *testBundle, n int) *subscribers.Import {
		t.Helper()
		var csv strings.Builder
		csv.WriteString("external_id\n")
		prefix := "imp-" + suffix()
		for i := range n {
			fmt.Fprintf(&csv, "%s-%d\n", prefix, i)
		}
		var imp *subscribers.Import
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			var err error
			imp, err = subscribers.CreateImport(ctx, tx, "t.csv", strings.NewReader(csv.String()), 1<<30)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return imp
	}

	// work runs the import job through River with a worker whose pool
	// fails statements containing failing.
	work := func(t *testing.T, b *testBundle, imp *subscribers.Import, failing string) (*rivertest.WorkResult, error) {
		t.Helper()
		w := &subscribers.ImportWorker{Pool: dbtest.FailingPool(t, failing), Logger: slog.New(slog.NewTextHandler(b.logs, nil))}
		tw := rivertest.NewWorker(t, riverpgxv5.New(b.pool), &river.Config{Logger: slog.New(slog.DiscardHandler)}, river.Worker[subscribers.ImportArgs](w))
		return tw.Work(ctx, t, dbtest.Tx(t), subscribers.ImportArgs{ImportID: imp.ID}, nil)
	}

	t.Run("AnalyzeFailingAfterCommitKeepsTheImport", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		imp := upload(t, b, 10_001) // large enough to analyze afterwards
		res, err := work(t, b, imp, "ANALYZE subscribers, memberships")
		if err != nil || res.EventKind != river.EventKindJobCompleted {
			t.Fatalf("import job: %v, %v", res.EventKind, err)
		}
		got, err := subscribers.GetImport(ctx, b.pool, imp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "finished" || got.RowsImported != 10_001 || got.Error != nil {
			t.Fatalf("import %s, %d rows, error %v", got.Status, got.RowsImported, got.Error)
		}
		if !strings.Contains(b.logs.String(), "level=WARN") {
			t.Fatalf("the failed analyze was not logged:\n%s", b.logs)
		}
	})

	t.Run("ProgressNotRecordedIsLogged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		imp := upload(t, b, 3)
		res, err := work(t, b, imp, "SET rows_read = $2 WHERE")
		if err != nil || res.EventKind != river.EventKindJobCompleted {
			t.Fatalf("import job: %v, %v", res.EventKind, err)
		}
		if !strings.Contains(b.logs.String(), "level=WARN") || !strings.Contains(b.logs.String(), "progress") {
			t.Fatalf("the failed progress update was not logged:\n%s", b.logs)
		}
	})

	t.Run("FailureNotRecordedIsLogged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		imp := upload(t, b, 3)
		res, err := work(t, b, imp, "UPDATE imports SET status")
		if err == nil || res.EventKind != river.EventKindJobFailed {
			t.Fatalf("import job: %v, %v; want it to fail", res.EventKind, err)
		}
		if !strings.Contains(b.logs.String(), "level=ERROR") {
			t.Fatalf("the import's failure could not be recorded, and that was not logged:\n%s", b.logs)
		}
	})
}

// syncBuffer is a bytes.Buffer for a logger that workers write from.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
