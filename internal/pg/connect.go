package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Retry pacing while PostgreSQL is not accepting connections yet: quick at
// first because a container usually needs a second or two, then capped so a
// long outage is not hammered.
const (
	firstRetryDelay = 100 * time.Millisecond
	maxRetryDelay   = 2 * time.Second
)

// DefaultMaxConns is a service pool's size unless DATABASE_URL sets
// pool_max_conns.
const DefaultMaxConns = 20

// SQLSTATE codes this package reacts to.
const (
	sqlstateCannotConnectNow  = "57P03" // server starting up or shutting down
	sqlstateDuplicateDatabase = "42P04"
)

// Connect opens a pool on url and pings it. While the server refuses
// connections or reports it is still starting, Connect keeps trying until ctx
// is done, logging each wait; give ctx a deadline to bound that. Other
// failures (bad password, missing database) return at once.
func Connect(ctx context.Context, url string, log *zap.Logger) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse error already redacts the password.
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	addr := serverAddr(&cfg.ConnConfig.Config)
	// pgx defaults to max(4, cores) connections, too few for a service whose
	// claimers long-poll; the URL's pool_max_conns still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool for postgresql at %s: %w", addr, err)
	}
	err = retryWhileStarting(ctx, func() error { return pool.Ping(ctx) }, func(attempt int, err error) {
		log.Info("waiting for postgresql",
			zap.String("addr", addr),
			zap.String("database", cfg.ConnConfig.Database),
			zap.Int("attempt", attempt),
			zap.Error(err))
	})
	if err != nil {
		pool.Close()
		return nil, describeConnectError(addr, err)
	}
	return pool, nil
}

// EnsureDatabase creates the database named in url if it does not exist yet,
// connecting to the "postgres" maintenance database of the same server with
// the same credentials, and reports whether it created it. Replicas may call
// it at the same time; one creates, the others find it there. Unlike Connect
// it does not wait for a server that is still starting.
func EnsureDatabase(ctx context.Context, url string) (created bool, err error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false, fmt.Errorf("parse database url: %w", err)
	}
	name := cfg.Database
	if name == "" || name == "postgres" {
		return false, nil
	}
	addr := serverAddr(&cfg.Config)

	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, describeConnectError(addr, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok &&
		(pgErr.Code == sqlstateDuplicateDatabase || pgErr.Code == UniqueViolation) {
		// Another replica created it between our check and our CREATE. When
		// both CREATEs run at once, PostgreSQL reports the loser as a unique
		// violation on pg_database rather than as duplicate_database.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create database %q on postgresql at %s: %w", name, addr, err)
	}
	return true, nil
}

// retryWhileStarting calls try until it succeeds, fails for a reason waiting
// cannot fix, or ctx is done; onWait is told about every failed attempt that
// will be retried. When ctx ends it returns the last "not ready" error, which
// says more about the server than ctx.Err would.
func retryWhileStarting(ctx context.Context, try func() error, onWait func(attempt int, err error)) error {
	delay := firstRetryDelay
	var lastNotReady error
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil && lastNotReady != nil {
			// This attempt was cut short by ctx; the earlier failure is
			// the one worth reporting.
			return lastNotReady
		}
		if !serverNotReady(err) || ctx.Err() != nil {
			return err
		}
		lastNotReady = err
		onWait(attempt, err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// serverNotReady reports whether err means the server is not up yet (as
// opposed to refusing us for a reason that waiting will not change).
func serverNotReady(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ENOENT) {
		return true
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == sqlstateCannotConnectNow
	}
	return false
}

// describeConnectError turns a failed connection attempt into advice. pgconn's
// own message is long and repeats per fallback host; the dial error inside
// it is what an operator needs.
func describeConnectError(addr string, err error) error {
	if serverNotReady(err) || errors.Is(err, context.DeadlineExceeded) {
		cause := err
		if opErr, ok := errors.AsType[*net.OpError](err); ok {
			cause = opErr
		}
		return fmt.Errorf("postgresql at %s is not reachable (%w); start it or set DATABASE_URL", addr, cause)
	}
	return fmt.Errorf("connect to postgresql at %s: %w", addr, err)
}

// serverAddr names the server for messages: host:port, or the socket
// directory for a unix socket.
func serverAddr(cfg *pgconn.Config) string {
	if strings.HasPrefix(cfg.Host, "/") {
		return cfg.Host
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}
