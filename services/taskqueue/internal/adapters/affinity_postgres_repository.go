package adapters

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/internal/window"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// AffinityPostgresRepository implements task.AffinityRepository on the
// taskqueue schema.
type AffinityPostgresRepository struct {
	pool *pgxpool.Pool
}

// NewAffinityPostgresRepository returns a repository over pool.
func NewAffinityPostgresRepository(pool *pgxpool.Pool) *AffinityPostgresRepository {
	return &AffinityPostgresRepository{pool: pool}
}

var _ task.AffinityRepository = (*AffinityPostgresRepository)(nil)

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
func (r *AffinityPostgresRepository) SetAffinity(ctx context.Context, a task.Affinity) (task.Affinity, error) {
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

// ListAffinities lists affinities ordered by session name then lesson.
func (r *AffinityPostgresRepository) ListAffinities(ctx context.Context, f task.AffinityFilter) ([]task.Affinity, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT `+affinityColumns+` FROM taskqueue.session_affinities
		WHERE ($1 = '' OR session_name = $1) AND ($2::uuid IS NULL OR lesson_id = $2)
		  AND (session_name, lesson_id::text) > ($3, $4)
		  AND ($6::text[] IS NULL OR lesson_id IN (SELECT lesson_id FROM taskqueue.lessons WHERE project = ANY($6)))
		ORDER BY session_name, lesson_id::text LIMIT $5`,
		f.SessionName, nullUUID(f.LessonID), f.AfterSessionName, f.AfterLessonID, f.Limit, nullStrings(f.Projects))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanAffinity)
}

// DeleteAffinity removes an affinity.
func (r *AffinityPostgresRepository) DeleteAffinity(ctx context.Context, sessionName, lessonID string) error {
	tag, err := r.pool.Exec(ctx, `DELETE FROM taskqueue.session_affinities WHERE session_name = $1 AND lesson_id = $2`, sessionName, lessonID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return task.ErrAffinityNotFound
	}
	return nil
}
