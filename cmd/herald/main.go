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
	"text/tabwriter"
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
  herald apikey list
  herald apikey revoke --id N
  herald user create --email E --name N --role admin|marketer|agent [--password-stdin] [--if-none]
  herald user list
  herald user reset --email E
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
	case "user":
		err = userCmd(os.Args[2:], os.Stdin, os.Stdout)
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
	if len(args) == 0 {
		return errors.New("usage: herald apikey create|list|revoke (see herald help)")
	}
	switch args[0] {
	case "create":
		return apikeyCreate(args[1:], out)
	case "list":
		return withPool(func(ctx context.Context, pool *pgxpool.Pool) error { return apikeyList(ctx, pool, out) })
	case "revoke":
		fs := flag.NewFlagSet("apikey revoke", flag.ContinueOnError)
		id := fs.Int64("id", 0, "the key's id (from herald apikey list)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *id <= 0 {
			return errors.New("usage: herald apikey revoke --id N")
		}
		return withPool(func(ctx context.Context, pool *pgxpool.Pool) error {
			if err := apikeys.NewService(pool).Revoke(ctx, operator("herald apikey revoke"), *id); err != nil {
				return err
			}
			fmt.Fprintf(out, "revoked key %d; it stops working at once\n", *id)
			return nil
		})
	}
	return fmt.Errorf("herald apikey: unknown command %q (create, list or revoke)", args[0])
}

// withPool runs f with a pool on a current database.
func withPool(f func(context.Context, *pgxpool.Pool) error) error {
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
	return f(ctx, pool)
}

func apikeyList(ctx context.Context, pool *pgxpool.Pool, out io.Writer) error {
	keys, err := apikeys.List(ctx, pool)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tROLE\tPREFIX\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
	day := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04")
	}
	for _, k := range keys {
		fmt.Fprintf(w, "%d\t%s\t%s\thk_%s_…\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Prefix, day(&k.CreatedAt),
			day(k.LastUsedAt), day(k.ExpiresAt), day(k.RevokedAt))
	}
	return w.Flush()
}

func apikeyCreate(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	name := fs.String("name", "", "what the key is for")
	role := fs.String("role", "admin", "admin, marketer or agent")
	days := fs.Int("expires-in-days", 0, "expire after this many days (0: never)")
	ifNone := fs.Bool("if-none", false, "only create a key when there is none yet (for first start)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withPool(func(ctx context.Context, pool *pgxpool.Pool) error {
		if *ifNone {
			var n int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").Scan(&n); err != nil {
				return fmt.Errorf("count API keys: %w", err)
			}
			if n > 0 {
				return nil
			}
		}
		plain, key, err := apikeys.NewService(pool).Create(ctx, operator("herald apikey create"), *name, apikeys.Role(*role), time.Duration(*days)*24*time.Hour)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, plain)
		fmt.Fprintf(os.Stderr, "created %s key %q (id %d); it is shown only once\n", key.Role, key.Name, key.ID)
		return nil
	})
}
