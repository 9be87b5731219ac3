package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// TaskPostgresRepository implements task.Repository on the taskqueue schema.
type TaskPostgresRepository struct {
	pool        *pgxpool.Pool
	claims      *claimCombiner
	completions *completionCombiner
}

// NewTaskPostgresRepository returns a repository over pool; log hears of
// claims that could not be put back (task_postgres_claim_combiner.go).
func NewTaskPostgresRepository(pool *pgxpool.Pool, log *zap.Logger) *TaskPostgresRepository {
	return &TaskPostgresRepository{pool: pool, claims: newClaimCombiner(pool, log), completions: newCompletionCombiner(pool)}
}

var _ task.Repository = (*TaskPostgresRepository)(nil)

// The claim queries and the settling of claims are in
// task_postgres_claims.go.

const taskColumns = `t.task_id::text, t.idempotency_key, t.task_type, t.payload, t.priority, coalesce(t.lesson_id::text, ''),
	t.state, t.attempt, t.max_attempts, t.run_at, t.claim_timeout_ms, coalesce(t.claimed_by_session_id, ''),
	coalesce(t.claimed_by_session_name, ''), t.claim_expires_at, t.result, t.last_error, t.created_at, t.updated_at, t.finished_at`

func scanTask(row pgx.CollectableRow) (task.Task, error) { return scanTaskWith(row) }

// scanTaskWith scans taskColumns and then any columns that follow them
// into extra.
func scanTaskWith(row pgx.CollectableRow, extra ...any) (task.Task, error) {
	var t task.Task
	var state string
	var timeoutMS int64
	var expires, finished *time.Time
	var result []byte
	err := row.Scan(append([]any{&t.ID, &t.IdempotencyKey, &t.Type, &t.Payload, &t.Priority, &t.LessonID,
		&state, &t.Attempt, &t.MaxAttempts, &t.RunAt, &timeoutMS, &t.ClaimedBySessionID,
		&t.ClaimedBySessionName, &expires, &result, &t.LastError, &t.CreatedAt, &t.UpdatedAt, &finished}, extra...)...)
	if err != nil {
		return t, err
	}
	t.State = task.State(state)
	t.ClaimTimeout = time.Duration(timeoutMS) * time.Millisecond
	if expires != nil {
		t.ClaimExpiresAt = *expires
	}
	if finished != nil {
		t.FinishedAt = *finished
	}
	if result != nil {
		t.Result = result
	}
	return t, nil
}

func queryTasks(ctx context.Context, q pgxQuerier, sql string, args ...any) ([]task.Task, error) {
	return queryAll(ctx, q, scanTask, sql, args...)
}

// updateOne runs an UPDATE … RETURNING of the one task id, guarded by the
// state the change needs. When it changes nothing it says why: the task does
// not exist (ErrTaskNotFound), or refused explains what about the task as it
// is now forbade the change (a claim lost since, a task already finished).
func (r *TaskPostgresRepository) updateOne(ctx context.Context, q pgxQuerier, id string, refused func(task.Task) error, sql string, args ...any) (task.Task, error) {
	rows, err := queryTasks(ctx, q, sql, args...)
	if err != nil {
		return task.Task{}, err
	}
	if len(rows) == 1 {
		return rows[0], nil
	}
	t, err := r.Get(ctx, id)
	if err != nil {
		return task.Task{}, err
	}
	return task.Task{}, refused(t)
}

// Enqueue inserts the batch in one statement. A key another transaction is
// inserting at the same moment is read back once that transaction ends.
func (r *TaskPostgresRepository) Enqueue(ctx context.Context, tasks []task.NewTask) ([]task.Enqueued, error) {
	if err := r.checkLessons(ctx, tasks); err != nil {
		return nil, err
	}
	n := len(tasks)
	ids, keys, types, lessons := make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	payloads, priorities, attempts, timeouts := make([]string, n), make([]int16, n), make([]int32, n), make([]int64, n)
	runAts := make([]*time.Time, n)
	for i, t := range tasks {
		ids[i], keys[i], types[i], lessons[i] = t.ID, t.IdempotencyKey, t.Type, nullUUID(t.LessonID)
		payloads[i] = string(t.Payload)
		priorities[i], attempts[i], timeouts[i] = int16(t.Priority), int32(t.MaxAttempts), t.ClaimTimeout.Milliseconds()
		if !t.RunAt.IsZero() {
			ra := t.RunAt
			runAts[i] = &ra
		}
	}
	byKey := map[string]task.Task{}
	inserted := map[string]bool{}
	for try := 0; len(byKey) < distinct(keys) && try < 5; try++ {
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			rows, err := queryTasks(ctx, tx, `
				WITH input AS (
					-- A key given twice in the batch: its first task only.
					SELECT DISTINCT ON (key) * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::smallint[],
					                     $6::uuid[], $7::timestamptz[], $8::int[], $9::bigint[]) WITH ORDINALITY
					    AS i(task_id, key, task_type, payload, priority, lesson_id, run_at, max_attempts, claim_timeout_ms, pos)
					ORDER BY key, pos
				)
				INSERT INTO taskqueue.tasks AS t (task_id, idempotency_key, task_type, payload, priority, lesson_id,
				                                 lesson_priority, run_at, max_attempts, claim_timeout_ms)
				SELECT i.task_id, i.key, i.task_type, i.payload, i.priority, i.lesson_id,
				       coalesce(l.priority, 0), coalesce(i.run_at, now()), i.max_attempts, i.claim_timeout_ms
				FROM input i LEFT JOIN taskqueue.lessons l ON l.lesson_id = i.lesson_id
				ON CONFLICT (idempotency_key) DO NOTHING
				RETURNING `+taskColumns, ids, keys, types, payloads, priorities, lessons, runAts, attempts, timeouts)
			if err != nil {
				return err
			}
			for _, t := range rows {
				byKey[t.IdempotencyKey] = t
				inserted[t.IdempotencyKey] = true
			}
			if len(rows) > 0 {
				return notifyReady(ctx, tx)
			}
			return nil
		})
		if err != nil {
			return nil, mapFK(err)
		}
		// Keys that already existed, read in a new snapshot so that a
		// concurrent insert that has just committed is seen.
		var missing []string
		for _, k := range keys {
			if _, ok := byKey[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			break
		}
		existing, err := queryTasks(ctx, r.pool, `SELECT `+taskColumns+` FROM taskqueue.tasks t WHERE t.idempotency_key = ANY($1)`, missing)
		if err != nil {
			return nil, err
		}
		for _, t := range existing {
			byKey[t.IdempotencyKey] = t
		}
	}
	out := make([]task.Enqueued, n)
	seen := map[string]bool{}
	for i, k := range keys {
		t, ok := byKey[k]
		if !ok {
			return nil, fmt.Errorf("enqueue: key %q neither inserted nor found", k)
		}
		out[i] = task.Enqueued{Task: t, Duplicate: !inserted[k] || seen[k]}
		seen[k] = true
	}
	return out, nil
}

func distinct(keys []string) int {
	m := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return len(m)
}

// checkLessons names the first task whose lesson does not exist.
func (r *TaskPostgresRepository) checkLessons(ctx context.Context, tasks []task.NewTask) error {
	var ids []string
	for _, t := range tasks {
		if t.LessonID != "" {
			ids = append(ids, t.LessonID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := r.pool.Query(ctx, `SELECT lesson_id::text FROM taskqueue.lessons WHERE lesson_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, id := range found {
		exists[id] = true
	}
	for i, t := range tasks {
		if t.LessonID != "" && !exists[t.LessonID] {
			field := "lesson_id"
			if len(tasks) > 1 {
				field = fmt.Sprintf("tasks[%d].lesson_id", i)
			}
			return domainerr.Invalid(field, "no lesson "+t.LessonID)
		}
	}
	return nil
}

// Cancel cancels a task that has not finished.
func (r *TaskPostgresRepository) Cancel(ctx context.Context, id, reason string) (task.Task, error) {
	return r.updateOne(ctx, r.pool, id, func(task.Task) error { return task.ErrNotCancellable }, `
		UPDATE taskqueue.tasks t SET state = 'cancelled', last_error = $2, finished_at = now(), updated_at = now(),
		       claimed_by_session_id = NULL, claimed_by_session_name = NULL, claim_expires_at = NULL
		WHERE t.task_id = $1 AND t.state IN ('pending', 'claimed')
		RETURNING `+taskColumns, id, reason)
}

// Retry revives a dead or cancelled task. Without a reset it keeps the
// attempt count and allows at least one more attempt.
func (r *TaskPostgresRepository) Retry(ctx context.Context, id string, reset bool, runAt time.Time) (task.Task, error) {
	var at *time.Time
	if !runAt.IsZero() {
		at = &runAt
	}
	var out task.Task
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		out, err = r.updateOne(ctx, tx, id, func(task.Task) error { return task.ErrNotRetryable }, `
			UPDATE taskqueue.tasks t SET state = 'pending',
			       attempt = CASE WHEN $2 THEN 0 ELSE t.attempt END,
			       max_attempts = CASE WHEN $2 THEN t.max_attempts ELSE LEAST(GREATEST(t.max_attempts, t.attempt + 1), 100) END,
			       run_at = coalesce($3, now()), finished_at = NULL,
			       lesson_priority = `+currentLessonPriority+`, updated_at = now()
			WHERE t.task_id = $1 AND t.state IN ('dead', 'cancelled')
			RETURNING `+taskColumns, id, reset, at)
		if err != nil {
			return err
		}
		return notifyReady(ctx, tx)
	})
	if err != nil {
		return task.Task{}, err
	}
	return out, nil
}

// Get returns one task.
func (r *TaskPostgresRepository) Get(ctx context.Context, id string) (task.Task, error) {
	rows, err := queryTasks(ctx, r.pool, `SELECT `+taskColumns+` FROM taskqueue.tasks t WHERE t.task_id = $1`, id)
	if err != nil {
		return task.Task{}, err
	}
	if len(rows) == 0 {
		return task.Task{}, task.ErrTaskNotFound
	}
	return rows[0], nil
}

// GetByKey returns the task with an idempotency key.
func (r *TaskPostgresRepository) GetByKey(ctx context.Context, key string) (task.Task, error) {
	rows, err := queryTasks(ctx, r.pool, `SELECT `+taskColumns+` FROM taskqueue.tasks t WHERE t.idempotency_key = $1`, key)
	if err != nil {
		return task.Task{}, err
	}
	if len(rows) == 0 {
		return task.Task{}, task.ErrTaskNotFound
	}
	return rows[0], nil
}

// List returns tasks newest first.
func (r *TaskPostgresRepository) List(ctx context.Context, f task.ListFilter) ([]task.Task, error) {
	var states []string
	for _, s := range f.States {
		states = append(states, string(s))
	}
	var types []string
	if len(f.Types) > 0 {
		types = f.Types
	}
	var after *time.Time
	if !f.AfterCreatedAt.IsZero() {
		after = &f.AfterCreatedAt
	}
	var budget *int64
	if f.MaxBytes > 0 {
		b := int64(f.MaxBytes)
		budget = &b
	}
	// A page of 1,000 tasks could carry 256 MB of payloads alone; the rows
	// whose JSON before them already passes the reply's budget stay in
	// PostgreSQL (the port cuts the page exactly).
	const jsonSize = `coalesce(octet_length(t.payload::text), 0) + coalesce(octet_length(t.result::text), 0)`
	return queryTasks(ctx, r.pool, `
		SELECT `+taskColumns+` FROM (
			SELECT t.*, sum(`+jsonSize+`) OVER (ORDER BY t.created_at DESC, t.task_id DESC ROWS UNBOUNDED PRECEDING) - (`+jsonSize+`) AS before
			FROM taskqueue.tasks t
			WHERE ($1::text[] IS NULL OR t.state = ANY($1))
			  AND ($2::text[] IS NULL OR t.task_type = ANY($2))
			  AND ($3::uuid IS NULL OR t.lesson_id = $3)
			  AND ($4 = '' OR t.claimed_by_session_id = $4)
			  AND ($5::timestamptz IS NULL OR (t.created_at, t.task_id) < ($5, $6::uuid))
			  AND ($8::text[] IS NULL OR t.lesson_id IN (SELECT lesson_id FROM taskqueue.lessons WHERE project = ANY($8)))
			ORDER BY t.created_at DESC, t.task_id DESC
			LIMIT $7) t
		WHERE $9::bigint IS NULL OR t.before <= $9
		ORDER BY t.created_at DESC, t.task_id DESC`, states, types, nullUUID(f.LessonID), f.ClaimedBySessionID, after, nullUUID(f.AfterID), f.Limit, nullStrings(f.Projects), budget)
}

// requeueSet takes a claim back; the attempt it used counts, so a task out
// of attempts is dead.
const requeueSet = `
	UPDATE taskqueue.tasks t SET
	       state = CASE WHEN t.attempt < t.max_attempts THEN 'pending' ELSE 'dead' END,
	       run_at = now(),
	       finished_at = CASE WHEN t.attempt < t.max_attempts THEN NULL ELSE now() END,
	       last_error = $1, claimed_by_session_id = NULL, claimed_by_session_name = NULL,
	       claim_expires_at = NULL, lesson_priority = ` + currentLessonPriority + `, updated_at = now()
	FROM picked WHERE t.task_id = picked.task_id
	RETURNING t.task_id::text, t.state = 'dead'`

func (r *TaskPostgresRepository) requeue(ctx context.Context, sql string, args ...any) ([]task.Requeued, error) {
	var out []task.Requeued
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (task.Requeued, error) {
			var q task.Requeued
			return q, row.Scan(&q.TaskID, &q.Dead)
		})
		if err == nil && len(out) > 0 {
			err = notifyReady(ctx, tx)
		}
		return err
	})
	return out, err
}

// RequeueExpired takes back claims whose lease ran out.
func (r *TaskPostgresRepository) RequeueExpired(ctx context.Context, limit int) ([]task.Requeued, error) {
	return r.requeue(ctx, `
		WITH picked AS (
			SELECT task_id FROM taskqueue.tasks
			WHERE state = 'claimed' AND claim_expires_at < now()
			ORDER BY claim_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`+requeueSet,
		"claim expired: the holder neither settled nor extended it in time", limit)
}

// RequeueSession takes back every claim of a session.
func (r *TaskPostgresRepository) RequeueSession(ctx context.Context, sessionID, reason string) ([]task.Requeued, error) {
	return r.requeue(ctx, `
		WITH picked AS (
			SELECT task_id FROM taskqueue.tasks
			WHERE state = 'claimed' AND claimed_by_session_id = $2 FOR UPDATE)`+requeueSet,
		reason, sessionID)
}

// ClaimingSessions lists the sessions holding claims.
func (r *TaskPostgresRepository) ClaimingSessions(ctx context.Context) ([]string, error) {
	rows, err := r.pool.Query(ctx, `SELECT DISTINCT claimed_by_session_id FROM taskqueue.tasks WHERE state = 'claimed'`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Prune deletes finished tasks past their retention, in bounded batches.
func (r *TaskPostgresRepository) Prune(ctx context.Context, finishedBefore, deadBefore time.Time) (int64, error) {
	var total int64
	for {
		tag, err := r.pool.Exec(ctx, `
			DELETE FROM taskqueue.tasks WHERE task_id IN (
				SELECT task_id FROM taskqueue.tasks
				WHERE (state IN ('completed', 'cancelled') AND finished_at < $1)
				   OR (state = 'dead' AND finished_at < $2)
				LIMIT 5000)`, finishedBefore, deadBefore)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 5000 {
			return total, nil
		}
	}
}

// Depth counts tasks by state and type.
func (r *TaskPostgresRepository) Depth(ctx context.Context) (map[task.State]map[string]int64, error) {
	rows, err := r.pool.Query(ctx, `SELECT state, task_type, count(*) FROM taskqueue.tasks GROUP BY state, task_type`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[task.State]map[string]int64{}
	for rows.Next() {
		var state, typ string
		var n int64
		if err := rows.Scan(&state, &typ, &n); err != nil {
			return nil, err
		}
		if out[task.State(state)] == nil {
			out[task.State(state)] = map[string]int64{}
		}
		out[task.State(state)][typ] = n
	}
	return out, rows.Err()
}
