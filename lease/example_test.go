package lease_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/lease"
)

type SendArgs struct {
	Campaign int64 `json:"campaign"`
}

func (SendArgs) Kind() string { return "example_send" }

type SendWorker struct {
	river.WorkerDefaults[SendArgs]
}

func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error { return nil }

// Example takes a worker identity, hands back the jobs its previous process
// left running, and runs River under that identity.
func Example() {
	ctx := context.Background()
	pool := dbtest.Pool(panicTB{}) // in Herald: the service's pool
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	ctx, stop := context.WithCancel(ctx)
	defer stop()

	l, err := lease.Acquire(ctx, pool, lease.Config{
		Hostname: "example-host", // default: os.Hostname()
		Version:  "v1.2.3",
		Logger:   logger,
		// Another process has the id: stop working at once.
		OnLost: func(err error) { stop() },
	})
	if err != nil {
		panic(err)
	}
	defer l.Close(context.WithoutCancel(ctx))

	// Before the River client starts: the jobs the previous process with this
	// id left running are available again at once.
	n, err := l.HandBack(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("worker %s: %d jobs handed back\n", l.ID(), n)

	workers := river.NewWorkers()
	river.AddWorker(workers, &SendWorker{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:      l.ID(),
		Logger:  logger,
		Queues:  map[string]river.QueueConfig{"example": {MaxWorkers: 10}},
		Workers: workers,
	})
	if err != nil {
		panic(err)
	}
	completed, cancel := client.Subscribe(river.EventKindJobCompleted)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	// Stop River first, then release the identity (deferred above).
	defer client.StopAndCancel(context.WithoutCancel(ctx)) //nolint:errcheck

	if _, err := client.Insert(ctx, SendArgs{Campaign: 1}, &river.InsertOpts{Queue: "example"}); err != nil {
		panic(err)
	}
	select {
	case ev := <-completed:
		fmt.Printf("job completed by %s\n", ev.Job.AttemptedBy[len(ev.Job.AttemptedBy)-1])
	case <-time.After(30 * time.Second):
		fmt.Println("timed out")
	}

	// Output:
	// worker example-host: 0 jobs handed back
	// job completed by example-host
}

// panicTB lets an example use the package's test schema; dbtest only calls
// Helper and, on failure, Fatalf.
type panicTB struct{ testing.TB }

func (panicTB) Helper()                   {}
func (panicTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
