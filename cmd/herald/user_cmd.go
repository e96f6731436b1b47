package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/users"
)

// operator is the person at the command line, as the audit log names them.
func operator(command string) audit.Actor {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return audit.Operator(command, name)
}

// usersService is the users service for a command: it needs
// HERALD_PUBLIC_URL for links and HERALD_SECRET to seal second factors.
func usersService(pool *pgxpool.Pool) (*users.Service, error) {
	cfg, err := config.Load(true)
	if err != nil {
		return nil, err
	}
	return users.NewService(pool, usersConfig(cfg), slog.New(slog.NewTextHandler(io.Discard, nil))), nil
}

func usersConfig(cfg *config.Config) users.Config {
	return users.Config{Secret: cfg.Secret, PublicURL: cfg.PublicURL, SessionIdle: cfg.SessionIdle,
		SessionAbsolute: cfg.SessionMaxAge, InvitationTTL: cfg.InvitationTTL}
}

func userCmd(args []string, in io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: herald user create|list|reset (see herald help)")
	}
	switch args[0] {
	case "create":
		return userCreate(args[1:], in, out)
	case "list":
		return withPool(func(ctx context.Context, pool *pgxpool.Pool) error {
			svc, err := usersService(pool)
			if err != nil {
				return err
			}
			return userList(ctx, svc, out)
		})
	case "reset":
		fs := flag.NewFlagSet("user reset", flag.ContinueOnError)
		email := fs.String("email", "", "the user's email address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *email == "" {
			return errors.New("usage: herald user reset --email E")
		}
		return withPool(func(ctx context.Context, pool *pgxpool.Pool) error {
			svc, err := usersService(pool)
			if err != nil {
				return err
			}
			link, err := svc.NewResetLink(ctx, operator("herald user reset"), *email)
			if errors.Is(err, users.ErrNotFound) {
				return fmt.Errorf("no user has the email address %q", *email)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(out, link)
			fmt.Fprintf(os.Stderr, "a link on which %s sets a new password; it works once, for %s\n", *email, svc.Config().ResetTTL)
			return nil
		})
	}
	return fmt.Errorf("herald user: unknown command %q (create, list or reset)", args[0])
}

func userCreate(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	email := fs.String("email", "", "the person's email address (their sign-in name)")
	name := fs.String("name", "", "their name as colleagues see it")
	role := fs.String("role", "admin", "admin, marketer or agent")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	ifNone := fs.Bool("if-none", false, "only create the user when there is no user yet (for first start)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var password string
	if *passwordStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
		if password == "" {
			return errors.New("--password-stdin: standard input held no password")
		}
	}
	return withPool(func(ctx context.Context, pool *pgxpool.Pool) error {
		svc, err := usersService(pool)
		if err != nil {
			return err
		}
		if *ifNone {
			n, err := svc.Count(ctx)
			if err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
		}
		actor := operator("herald user create")
		nu := users.NewUser{Email: *email, Name: *name, Role: access.Role(*role), Password: password}
		if password != "" {
			u, err := svc.Create(ctx, actor, nu)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "created %s %s (id %d); sign in at %s/sign-in\n", u.Role, u.Email, u.ID, svc.Config().PublicURL)
			return nil
		}
		u, link, err := svc.CreateWithLink(ctx, actor, nu)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, link)
		fmt.Fprintf(os.Stderr, "created %s %s (id %d): the printed link sets their password and signs them in; it works once, for %s\n",
			u.Role, u.Email, u.ID, svc.Config().ResetTTL)
		return nil
	})
}

func userList(ctx context.Context, svc *users.Service, out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tEMAIL\tNAME\tROLE\tSTATE\tPASSWORD\tTOTP")
	var after int64
	for {
		page, err := svc.List(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, u := range page {
			yes := map[bool]string{true: "yes", false: "no"}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, u.Role, u.State, yes[u.HasPassword], yes[u.TOTPEnabled])
			after = u.ID
		}
		if len(page) < 500 {
			break
		}
	}
	return w.Flush()
}
