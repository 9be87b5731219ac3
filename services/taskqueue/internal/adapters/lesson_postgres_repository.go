package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gaia-platform/gaia/internal/window"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

const lessonColumns = `lesson_id::text, project, name, objective, priority, metadata, tasks_total, tasks_completed, tasks_dead, created_at, updated_at`

func scanLesson(row pgx.CollectableRow) (task.Lesson, error) {
	var l task.Lesson
	err := row.Scan(&l.ID, &l.Project, &l.Name, &l.Objective, &l.Priority, &l.Metadata, &l.TasksTotal, &l.TasksCompleted, &l.TasksDead, &l.CreatedAt, &l.UpdatedAt)
	return l, err
}

func (r *TaskPostgresRepository) queryLessons(ctx context.Context, q pgxQuerier, sql string, args ...any) ([]task.Lesson, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanLesson)
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// CreateLesson inserts a lesson.
func (r *TaskPostgresRepository) CreateLesson(ctx context.Context, l task.Lesson) (task.Lesson, error) {
	rows, err := r.queryLessons(ctx, r.pool, `
		INSERT INTO taskqueue.lessons (lesson_id, project, name, objective, priority, metadata)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+lessonColumns,
		l.ID, l.Project, l.Name, l.Objective, l.Priority, string(l.Metadata))
	if isUniqueViolation(err) {
		return task.Lesson{}, task.ErrLessonExists
	}
	if err != nil {
		return task.Lesson{}, err
	}
	return rows[0], nil
}

// GetLesson returns a lesson with its progress.
func (r *TaskPostgresRepository) GetLesson(ctx context.Context, id string) (task.Lesson, error) {
	rows, err := r.queryLessons(ctx, r.pool, `SELECT `+lessonColumns+` FROM taskqueue.lessons WHERE lesson_id = $1`, id)
	if err != nil {
		return task.Lesson{}, err
	}
	if len(rows) == 0 {
		return task.Lesson{}, task.ErrLessonNotFound
	}
	return rows[0], nil
}

// ListLessons returns lessons newest first.
func (r *TaskPostgresRepository) ListLessons(ctx context.Context, f task.LessonFilter) ([]task.Lesson, error) {
	var after *time.Time
	if !f.AfterCreatedAt.IsZero() {
		after = &f.AfterCreatedAt
	}
	return r.queryLessons(ctx, r.pool, `
		SELECT `+lessonColumns+` FROM taskqueue.lessons
		WHERE ($1 = '' OR project = $1)
		  AND ($2::timestamptz IS NULL OR (created_at, lesson_id) < ($2, $3::uuid))
		ORDER BY created_at DESC, lesson_id DESC LIMIT $4`, f.Project, after, nullUUID(f.AfterID), f.Limit)
}

// UpdateLesson changes the given fields. A new priority is copied to the
// lesson's pending tasks, which the claim order reads.
func (r *TaskPostgresRepository) UpdateLesson(ctx context.Context, id string, u task.LessonUpdate) (task.Lesson, error) {
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
		rows, err := r.queryLessons(ctx, tx, `
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
	if isUniqueViolation(err) {
		return task.Lesson{}, task.ErrLessonExists
	}
	return out, err
}

const affinityColumns = `session_name, lesson_id::text, score, time_window, created_at, updated_at`

func scanAffinity(row pgx.CollectableRow) (task.Affinity, error) {
	var a task.Affinity
	var w []byte
	if err := row.Scan(&a.SessionName, &a.LessonID, &a.Score, &w, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return a, err
	}
	if w != nil {
		a.Window = new(window.Window)
		if err := json.Unmarshal(w, a.Window); err != nil {
			return a, err
		}
	}
	return a, nil
}

// SetAffinity creates or replaces an affinity.
func (r *TaskPostgresRepository) SetAffinity(ctx context.Context, a task.Affinity) (task.Affinity, error) {
	var w *string
	if a.Window != nil {
		b, err := json.Marshal(a.Window)
		if err != nil {
			return task.Affinity{}, err
		}
		s := string(b)
		w = &s
	}
	rows, err := r.pool.Query(ctx, `
		INSERT INTO taskqueue.session_affinities (session_name, lesson_id, score, time_window)
		VALUES ($1, $2, $3, $4::jsonb)
		ON CONFLICT (session_name, lesson_id) DO UPDATE
		   SET score = EXCLUDED.score, time_window = EXCLUDED.time_window, updated_at = now()
		RETURNING `+affinityColumns, a.SessionName, a.LessonID, a.Score, w)
	if err != nil {
		return task.Affinity{}, mapFKLesson(err)
	}
	out, err := pgx.CollectRows(rows, scanAffinity)
	if err != nil {
		return task.Affinity{}, mapFKLesson(err)
	}
	return out[0], nil
}

func mapFKLesson(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return task.ErrLessonNotFound
	}
	return err
}

// ListAffinities lists affinities ordered by session name then lesson.
func (r *TaskPostgresRepository) ListAffinities(ctx context.Context, f task.AffinityFilter) ([]task.Affinity, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT `+affinityColumns+` FROM taskqueue.session_affinities
		WHERE ($1 = '' OR session_name = $1) AND ($2::uuid IS NULL OR lesson_id = $2)
		  AND (session_name, lesson_id::text) > ($3, $4)
		ORDER BY session_name, lesson_id::text LIMIT $5`,
		f.SessionName, nullUUID(f.LessonID), f.AfterSessionName, f.AfterLessonID, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanAffinity)
}

// DeleteAffinity removes an affinity.
func (r *TaskPostgresRepository) DeleteAffinity(ctx context.Context, sessionName, lessonID string) error {
	tag, err := r.pool.Exec(ctx, `DELETE FROM taskqueue.session_affinities WHERE session_name = $1 AND lesson_id = $2`, sessionName, lessonID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return task.ErrAffinityNotFound
	}
	return nil
}
