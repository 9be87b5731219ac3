package pg

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/pg/migrate"
)

// DefaultURL is the local PostgreSQL that `make run` and the services use when
// DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/gaia?sslmode=disable"

// OpenSchema connects to PostgreSQL and brings one service's schema up to date
// with its migrations before handing the pool over. Every service that owns
// tables starts this way, so that a replica never serves an older schema.
func OpenSchema(ctx context.Context, url, schema string, migrations fs.FS, log *zap.Logger) (*pgxpool.Pool, error) {
	pool, err := Connect(ctx, url, log)
	if err != nil {
		return nil, err
	}
	if _, err := migrate.Up(ctx, pool, schema, migrations, log); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	return pool, nil
}
