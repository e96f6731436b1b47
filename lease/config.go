package lease

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// PingIntervalDefault is the default Config.PingInterval.
	PingIntervalDefault = 5 * time.Second

	// LostAfterDefault is the default Config.LostAfter.
	LostAfterDefault = 30 * time.Second

	// MaxSlots is the number of ids a hostname yields: the hostname itself and
	// hostname-2 … hostname-32.
	MaxSlots = 32

	// maxIDLength is River's limit on Config.ID.
	maxIDLength = 100
)

// Config configures Acquire.
type Config struct {
	// ID is the configured identity (HERALD_WORKER_ID). When set, Acquire takes
	// exactly this id or fails with ErrIDInUse. When empty, the id is derived
	// from Hostname, with slots for several processes on one host.
	ID string

	// Hostname is the host the id is derived from and the hostname recorded in
	// herald_workers. Defaults to os.Hostname().
	Hostname string

	// Version is the build recorded in herald_workers.
	Version string

	// PingInterval is how often the lease writes heartbeat_at on its lock
	// connection, which is also how it notices that the connection is gone.
	// Defaults to PingIntervalDefault.
	PingInterval time.Duration

	// LostAfter is how long the lease keeps trying to reconnect and re-take
	// its lock after its connection failed before it gives up and reports
	// ErrLost. Defaults to LostAfterDefault.
	LostAfter time.Duration

	// Logger receives the lease's events. Defaults to slog.Default().
	Logger *slog.Logger

	// OnLost is called once, from the lease's goroutine, when the identity is
	// lost for good (the error wraps ErrLost). The caller should stop its River
	// client with StopAndCancel and exit: another process may now run jobs
	// under the same id. OnLost may call Close.
	OnLost func(error)

	// hooks are set by tests only.
	hooks *testHooks
}

// testHooks let tests hold the lease at chosen points.
type testHooks struct {
	// beforeRetake runs before every attempt to reconnect and re-take the lock.
	beforeRetake func(ctx context.Context)

	// connConfig may change the config of every lock connection.
	connConfig func(cfg *pgx.ConnConfig)
}

func (c Config) withDefaults() (Config, error) {
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil && c.ID == "" {
			return c, fmt.Errorf("lease: hostname: %w", err)
		}
		c.Hostname = h
	}
	if c.PingInterval == 0 {
		c.PingInterval = PingIntervalDefault
	}
	if c.LostAfter == 0 {
		c.LostAfter = LostAfterDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.PingInterval < 0:
		return c, fmt.Errorf("lease: PingInterval %s is negative", c.PingInterval)
	case c.LostAfter < 0:
		return c, fmt.Errorf("lease: LostAfter %s is negative", c.LostAfter)
	case len(c.ID) > maxIDLength:
		return c, fmt.Errorf("lease: id %q is longer than %d characters (River's limit)", c.ID, maxIDLength)
	}
	return c, nil
}
