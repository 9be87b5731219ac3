// Package adapters connects the task queue to the outside: PostgreSQL for
// tasks, lessons and affinities, the coordinator for sessions, and
// PostgreSQL's LISTEN/NOTIFY for waking waiting claimers.
package adapters

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// ReadyChannel is the NOTIFY channel that says new tasks may be claimable.
const ReadyChannel = "taskqueue_ready"

// notifyReady wakes waiting claimers, on every replica, once tx commits.
func notifyReady(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, ReadyChannel)
	return err
}

// pgxQuerier is a pool or a transaction.
type pgxQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryAll runs a query and scans every row it returns with scan.
func queryAll[T any](ctx context.Context, q pgxQuerier, scan pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

// nullUUID is NULL for an empty id, for optional uuid parameters.
func nullUUID(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nullStrings is NULL for an empty list, for optional text[] filters.
func nullStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// mapFK turns a lesson foreign-key violation (a lesson deleted meanwhile)
// into a domain error.
func mapFK(err error) error {
	if pg.HasCode(err, pg.ForeignKeyViolation) {
		return domainerr.Invalid("lesson_id", "no such lesson")
	}
	return err
}

// mapFKLesson turns a lesson foreign-key violation into ErrLessonNotFound.
func mapFKLesson(err error) error {
	if pg.HasCode(err, pg.ForeignKeyViolation) {
		return task.ErrLessonNotFound
	}
	return err
}
