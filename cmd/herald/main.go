// Command herald runs Herald: `herald serve` for the API, pages and workers,
// `herald migrate` to bring the database up to date, `herald apikey create`
// for API keys and `herald version`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"
	_ "time/tzdata" // IANA zones for subscribers' time zones on any host

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/migrations"
)

// version is set with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `Herald: opt-in broadcast messaging that turns into a conversation.

Usage:
  herald serve [--api-only | --workers-only] [--seed-demo]
  herald migrate
  herald apikey create --name NAME --role admin|marketer|agent [--expires-in-days N] [--if-none]
  herald version

Configuration comes from HERALD_* environment variables; see the README.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "migrate":
		err = migrate()
	case "apikey":
		err = apikey(os.Args[2:], os.Stdout)
	case "version", "--version", "-v":
		fmt.Println(versionString())
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "herald: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "herald: %v\n", err)
		os.Exit(1)
	}
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	return "herald " + v
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func migrate() error {
	cfg, err := config.Load(false)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pool, err := openMigrated(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	pool.Close()
	logger.Info("database is current")
	return nil
}

// openMigrated creates the database if needed, opens it and migrates it.
func openMigrated(ctx context.Context, url string, logger *slog.Logger) (*pgxpool.Pool, error) {
	if err := database.EnsureDatabase(ctx, url); err != nil {
		return nil, err
	}
	pool, err := database.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, pool, logger); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func apikey(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: herald apikey create --name NAME --role admin|marketer|agent")
	}
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	name := fs.String("name", "", "what the key is for")
	role := fs.String("role", "admin", "admin, marketer or agent")
	days := fs.Int("expires-in-days", 0, "expire after this many days (0: never)")
	ifNone := fs.Bool("if-none", false, "only create a key when there is none yet (for first start)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := database.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Check(ctx, pool); err != nil {
		return fmt.Errorf("%w (run `herald migrate` first)", err)
	}
	if *ifNone {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	plain, key, err := apikeys.Create(ctx, pool, *name, apikeys.Role(*role), time.Duration(*days)*24*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, plain)
	fmt.Fprintf(os.Stderr, "created %s key %q (id %d); it is shown only once\n", key.Role, key.Name, key.ID)
	return nil
}
