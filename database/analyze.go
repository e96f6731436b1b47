package database

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// analyzed are the tables that grow in bulk (imports, sign-ups, campaigns)
// and whose statistics the planner needs.
var analyzed = []string{"subscribers", "devices", "memberships", "consent_records", "deliveries", "campaign_batches"}

// AnalyzeChanged runs ANALYZE on Herald's bulk tables whose rows changed by
// more than a tenth (and 1,000 rows) since they were last analysed, the
// threshold autovacuum uses, and returns their names. Where autovacuum runs
// it finds little to do; where it is off (as on some managed and test
// servers), tables loaded a row at a time keep no statistics and plans
// that need them go badly wrong.
func AnalyzeChanged(ctx context.Context, db DB, logger *slog.Logger) ([]string, error) {
	rows, err := db.Query(ctx, `
		SELECT relname FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND relname = ANY($1)
		AND n_mod_since_analyze > 1000 + 0.1 * greatest(n_live_tup, 0)`, analyzed)
	if err != nil {
		return nil, fmt.Errorf("database: find tables to analyse: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("database: find tables to analyse: %w", err)
	}
	for _, t := range tables {
		started := time.Now()
		if _, err := db.Exec(ctx, `ANALYZE `+pgx.Identifier{t}.Sanitize()); err != nil {
			return nil, fmt.Errorf("database: analyse %s: %w", t, err)
		}
		logger.Info("table analysed after bulk changes", "table", t, "took", time.Since(started).String())
	}
	return tables, nil
}

// AnalyzeArgs runs AnalyzeChanged as a River job.
type AnalyzeArgs struct{}

// Kind implements river.JobArgs.
func (AnalyzeArgs) Kind() string { return "database.analyze" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (AnalyzeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByPeriod: AnalyzeEvery}}
}

// AnalyzeEvery is how often AnalyzeWorker looks for changed tables.
const AnalyzeEvery = 2 * time.Minute

// AnalyzeWorker runs AnalyzeArgs.
type AnalyzeWorker struct {
	river.WorkerDefaults[AnalyzeArgs]
	DB     DB
	Logger *slog.Logger
}

// Work implements river.Worker.
func (w *AnalyzeWorker) Work(ctx context.Context, _ *river.Job[AnalyzeArgs]) error {
	_, err := AnalyzeChanged(ctx, w.DB, w.Logger)
	return err
}

// AnalyzePeriodicJob runs AnalyzeWorker every AnalyzeEvery and at start.
func AnalyzePeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(AnalyzeEvery),
		func() (river.JobArgs, *river.InsertOpts) { return AnalyzeArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true, ID: "database.analyze"})
}
