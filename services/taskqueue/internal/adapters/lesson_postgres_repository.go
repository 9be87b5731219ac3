package adapters

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// LessonPostgresRepository implements task.LessonRepository on the
// taskqueue schema. The lessons' progress counters are kept by a trigger on
// the tasks table, in the transaction that changes a task.
type LessonPostgresRepository struct {
	pool *pgxpool.Pool
}

// NewLessonPostgresRepository returns a repository over pool.
func NewLessonPostgresRepository(pool *pgxpool.Pool) *LessonPostgresRepository {
	return &LessonPostgresRepository{pool: pool}
}

var _ task.LessonRepository = (*LessonPostgresRepository)(nil)

const lessonColumns = `lesson_id::text, project, name, objective, priority, metadata, tasks_total, tasks_completed, tasks_dead, created_at, updated_at`

func scanLesson(row pgx.CollectableRow) (task.Lesson, error) {
	var l task.Lesson
	err := row.Scan(&l.ID, &l.Project, &l.Name, &l.Objective, &l.Priority, &l.Metadata, &l.TasksTotal, &l.TasksCompleted, &l.TasksDead, &l.CreatedAt, &l.UpdatedAt)
	return l, err
}

func queryLessons(ctx context.Context, q pgxQuerier, sql string, args ...any) ([]task.Lesson, error) {
	return queryAll(ctx, q, scanLesson, sql, args...)
}

// CreateLesson inserts a lesson.
func (r *LessonPostgresRepository) CreateLesson(ctx context.Context, l task.Lesson) (task.Lesson, error) {
	rows, err := queryLessons(ctx, r.pool, `
		INSERT INTO taskqueue.lessons (lesson_id, project, name, objective, priority, metadata)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+lessonColumns,
		l.ID, l.Project, l.Name, l.Objective, l.Priority, string(l.Metadata))
	if pg.HasCode(err, pg.UniqueViolation) {
		return task.Lesson{}, task.ErrLessonExists
	}
	if err != nil {
		return task.Lesson{}, err
	}
	return rows[0], nil
}

// GetLesson returns a lesson with its progress.
func (r *LessonPostgresRepository) GetLesson(ctx context.Context, id string) (task.Lesson, error) {
	rows, err := queryLessons(ctx, r.pool, `SELECT `+lessonColumns+` FROM taskqueue.lessons WHERE lesson_id = $1`, id)
	if err != nil {
		return task.Lesson{}, err
	}
	if len(rows) == 0 {
		return task.Lesson{}, task.ErrLessonNotFound
	}
	return rows[0], nil
}

// ListLessons returns lessons newest first.
func (r *LessonPostgresRepository) ListLessons(ctx context.Context, f task.LessonFilter) ([]task.Lesson, error) {
	var after *time.Time
	if !f.AfterCreatedAt.IsZero() {
		after = &f.AfterCreatedAt
	}
	return queryLessons(ctx, r.pool, `
		SELECT `+lessonColumns+` FROM taskqueue.lessons
		WHERE ($1 = '' OR project = $1)
		  AND ($2::timestamptz IS NULL OR (created_at, lesson_id) < ($2, $3::uuid))
		  AND ($5::text[] IS NULL OR project = ANY($5))
		ORDER BY created_at DESC, lesson_id DESC LIMIT $4`, f.Project, after, nullUUID(f.AfterID), f.Limit, nullStrings(f.Projects))
}

// UpdateLesson changes the given fields. A new priority is copied to the
// lesson's pending tasks, which the claim order reads.
func (r *LessonPostgresRepository) UpdateLesson(ctx context.Context, id string, u task.LessonUpdate) (task.Lesson, error) {
	var out task.Lesson
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if u.Priority != nil {
			// The tasks before the lesson: cancelling a task locks it and
			// then, through the progress trigger, its lesson; taking the
			// two the other way round would deadlock with it.
			if _, err := tx.Exec(ctx, `UPDATE taskqueue.tasks SET lesson_priority = $2 WHERE lesson_id = $1 AND state = 'pending' AND lesson_priority <> $2`, id, *u.Priority); err != nil {
				return err
			}
		}
		var metadata *string
		if u.Metadata != nil {
			s := string(u.Metadata)
			metadata = &s
		}
		rows, err := queryLessons(ctx, tx, `
			UPDATE taskqueue.lessons SET
			       name = coalesce($2, name), objective = coalesce($3, objective),
			       priority = coalesce($4, priority), metadata = coalesce($5::jsonb, metadata), updated_at = now()
			WHERE lesson_id = $1 RETURNING `+lessonColumns, id, u.Name, u.Objective, u.Priority, metadata)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return task.ErrLessonNotFound
		}
		out = rows[0]
		return nil
	})
	if pg.HasCode(err, pg.UniqueViolation) {
		return task.Lesson{}, task.ErrLessonExists
	}
	return out, err
}
