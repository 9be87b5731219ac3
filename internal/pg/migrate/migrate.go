package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// schemaName accepts plain lowercase identifiers only, so a schema name never
// needs quoting in an operator's psql session either.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Applied is a migration recorded in schema_migrations.
type Applied struct {
	Version   int
	Name      string
	AppliedAt time.Time
	Checksum  string
}

// Up applies the migrations in files that schema has not had yet, in version
// order, and returns them; on error it returns those applied before the
// failure. It holds a PostgreSQL advisory lock for schema throughout, so
// replicas starting together apply each migration once: the others wait,
// then find nothing left to do.
func Up(ctx context.Context, pool *pgxpool.Pool, schema string, files fs.FS, log *zap.Logger) (applied []Migration, err error) {
	if err := checkSchemaName(schema); err != nil {
		return nil, err
	}
	migrations, err := Load(files)
	if err != nil {
		return nil, err
	}

	// A session-level advisory lock belongs to one connection, so every
	// statement below runs on this one.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection to migrate schema %s: %w", schema, err)
	}
	defer conn.Release()

	if err := lock(ctx, conn, schema); err != nil {
		return nil, err
	}
	defer func() {
		if unlockErr := unlock(conn, schema); unlockErr != nil {
			err = errors.Join(err, unlockErr)
		}
	}()

	// Created under the lock: concurrent CREATE ... IF NOT EXISTS can still
	// fail with a unique violation in the catalog.
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(schema)); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table(schema)+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		checksum   text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("create %s.schema_migrations: %w", schema, err)
	}

	done, err := readApplied(ctx, conn, schema)
	if err != nil {
		return nil, err
	}
	if err := checkHistory(schema, migrations, done); err != nil {
		return nil, err
	}

	for _, m := range notApplied(migrations, done) {
		start := time.Now()
		if err := apply(ctx, conn, schema, m); err != nil {
			return applied, fmt.Errorf("apply migration %s to schema %s: %w", m.File(), schema, err)
		}
		applied = append(applied, m)
		log.Info("migration applied",
			zap.String("schema", schema),
			zap.Int("version", m.Version),
			zap.String("name", m.Name),
			zap.Duration("duration", time.Since(start)))
	}
	return applied, nil
}

// Status reports which migrations schema has had and which of files it has
// not. It takes no lock and changes nothing; a schema never migrated has
// everything pending.
func Status(ctx context.Context, pool *pgxpool.Pool, schema string, files fs.FS) (applied []Applied, pending []Migration, err error) {
	if err := checkSchemaName(schema); err != nil {
		return nil, nil, err
	}
	migrations, err := Load(files)
	if err != nil {
		return nil, nil, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table(schema)).Scan(&exists); err != nil {
		return nil, nil, fmt.Errorf("look for %s.schema_migrations: %w", schema, err)
	}
	if exists {
		if applied, err = readApplied(ctx, pool, schema); err != nil {
			return nil, nil, err
		}
	}
	return applied, notApplied(migrations, applied), nil
}

// checkHistory makes sure the applied history is one these files produced:
// every applied version has its file, unchanged.
func checkHistory(schema string, migrations []Migration, applied []Applied) error {
	files := make(map[int]Migration, len(migrations))
	for _, m := range migrations {
		files[m.Version] = m
	}
	for _, a := range applied {
		m, ok := files[a.Version]
		if !ok {
			return fmt.Errorf("schema %s has migration %04d_%s.sql applied, but this binary has no such file: "+
				"the database is newer than this binary; run a newer release", schema, a.Version, a.Name)
		}
		if m.Checksum != a.Checksum {
			return fmt.Errorf("migration %s was edited after it was applied to schema %s (checksum %.12s in the database, %.12s in the file): "+
				"restore the file and put the change in a new migration", m.File(), schema, a.Checksum, m.Checksum)
		}
	}
	return nil
}

// notApplied returns the migrations missing from applied, in version order.
func notApplied(migrations []Migration, applied []Applied) []Migration {
	done := make(map[int]bool, len(applied))
	for _, a := range applied {
		done[a.Version] = true
	}
	var pending []Migration
	for _, m := range migrations {
		if !done[m.Version] {
			pending = append(pending, m)
		}
	}
	return pending
}

func apply(ctx context.Context, conn *pgxpool.Conn, schema string, m Migration) error {
	if m.NoTx {
		return applyWithoutTx(ctx, conn, schema, m)
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// LOCAL: the setting ends with the transaction, so the connection
		// goes back to the pool unchanged.
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident(schema)); err != nil {
			return err
		}
		// Without arguments pgx sends the simple protocol, which runs a file
		// of several statements as it is.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		return recordApplied(ctx, tx, schema, m)
	})
}

// applyWithoutTx runs a no-transaction migration. If it fails part way, or
// the process dies before recording it, it runs again next time, which is why
// such migrations must be idempotent (CREATE INDEX CONCURRENTLY IF NOT
// EXISTS). PostgreSQL runs a string of several statements as one implicit
// transaction, so such a file should hold a single statement.
func applyWithoutTx(ctx context.Context, conn *pgxpool.Conn, schema string, m Migration) (err error) {
	if _, err := conn.Exec(ctx, "SET search_path TO "+ident(schema)); err != nil {
		return err
	}
	defer func() {
		if resetErr := resetSearchPath(conn); resetErr != nil {
			err = errors.Join(err, resetErr)
		}
	}()
	if _, err := conn.Exec(ctx, m.SQL); err != nil {
		return err
	}
	return recordApplied(ctx, conn, schema, m)
}

// resetSearchPath undoes applyWithoutTx's SET before the connection goes
// back to the pool, or drops the connection if it cannot.
func resetSearchPath(conn *pgxpool.Conn) error {
	if conn.Conn().IsClosed() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if _, err := conn.Exec(ctx, "RESET search_path"); err != nil {
		discard(conn)
		return fmt.Errorf("reset search_path: %w", err)
	}
	return nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func recordApplied(ctx context.Context, db execer, schema string, m Migration) error {
	_, err := db.Exec(ctx, "INSERT INTO "+table(schema)+" (version, name, checksum) VALUES ($1, $2, $3)",
		m.Version, m.Name, m.Checksum)
	if err != nil {
		return fmt.Errorf("record in schema_migrations: %w", err)
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readApplied(ctx context.Context, db querier, schema string) ([]Applied, error) {
	rows, _ := db.Query(ctx, "SELECT version, name, applied_at, checksum FROM "+table(schema)+" ORDER BY version")
	applied, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Applied])
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", schema, err)
	}
	return applied, nil
}

func lock(ctx context.Context, conn *pgxpool.Conn, schema string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey(schema)); err != nil {
		return fmt.Errorf("take migration lock for schema %s: %w", schema, err)
	}
	return nil
}

// cleanupTimeout bounds the statements that put the connection back in
// order (unlock, reset), which must run even after ctx is done.
const cleanupTimeout = 5 * time.Second

func unlock(conn *pgxpool.Conn, schema string) error {
	if conn.Conn().IsClosed() {
		// The session, and with it the lock, is already gone.
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", lockKey(schema)); err != nil {
		// Never hand a connection that may still hold the lock back to the
		// pool: closing it ends the session and releases the lock.
		discard(conn)
		return fmt.Errorf("release migration lock for schema %s: %w", schema, err)
	}
	return nil
}

// discard closes conn so the pool drops it instead of reusing it.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = conn.Conn().Close(ctx)
}

// lockKey derives the advisory lock key from the schema, so migrating two
// schemas in one database does not serialise them.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("gaia/migrate/" + schema))
	return int64(h.Sum64())
}

func checkSchemaName(schema string) error {
	if !schemaName.MatchString(schema) {
		return fmt.Errorf("schema name %q: want a lowercase identifier such as taskqueue (letters, digits, underscores; at most 63)", schema)
	}
	return nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func table(schema string) string { return pgx.Identifier{schema, "schema_migrations"}.Sanitize() }
