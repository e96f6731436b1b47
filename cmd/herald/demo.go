package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/demo"
	"github.com/herald-im/herald/subscribers"
)

// demoDevices is how many simulated devices of each platform the demo has.
const demoDevices = 1000

// seedDemo fills an empty database with a demo list and, when the simulator
// runs, confirmed subscribers with simulated devices of all three kinds, so
// that a newcomer can send a campaign right away. It never touches a
// database that has lists.
func seedDemo(ctx context.Context, pool *pgxpool.Pool, appID int64, sim *simulator.Server, logger *slog.Logger) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// One seeder at a time, and only into an empty database.
		if _, err := tx.Exec(ctx, `LOCK TABLE lists IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM lists`).Scan(&n); err != nil || n > 0 {
			return err
		}
		slug, name := "news", "Herald demo news"
		desc := "A demo list: occasional news, delivered as notifications."
		consent := "I agree to receive occasional news as notifications. I can unsubscribe at any time with one click."
		list, err := subscribers.CreateList(ctx, tx, subscribers.ListParams{Slug: &slug, Name: &name, Description: &desc, ConsentText: &consent})
		if err != nil {
			return err
		}
		if sim == nil {
			logger.Info("seeded the demo list without devices (the provider simulator is off)", "list", slug)
			return nil
		}
		if err := demo.Seed(ctx, tx, appID, list.ID, demoDevices, "demo", sim, delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush); err != nil {
			return err
		}
		logger.Info("seeded demo data", "list", slug, "subscribers", 3*demoDevices, "devices_per_platform", demoDevices)
		return nil
	})
}
