package adapters

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// The task repository's claims: handing tasks out, and settling, extending
// and failing what was handed out, each fenced by the claim token.

const claimSet = `
	UPDATE taskqueue.tasks t SET state = 'claimed', attempt = t.attempt + 1,
	       claimed_by_session_id = $1, claimed_by_session_name = $2,
	       claim_expires_at = now() + t.claim_timeout_ms * interval '1 millisecond', updated_at = now()
	FROM picked WHERE t.task_id = picked.task_id
	RETURNING ` + taskColumns

// Claim claims within the session's free capacity, serialised per session
// so that two concurrent claims cannot both fill the same free slots.
func (r *TaskPostgresRepository) Claim(ctx context.Context, req task.ClaimRequest) ([]task.Claim, error) {
	var claimed []task.Task
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// The claim queries below must walk their index in claim order and
		// stop after the limit. With the queue's statistics missing or stale
		// (a new table, a burst since the last analyze) the planner would
		// rather gather and sort every pending task, at a cost that grows
		// with the queue's depth; these settings, for this transaction
		// only, rule that plan out without changing any result.
		if _, err := tx.Exec(ctx, `SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true),
			pg_advisory_xact_lock(hashtextextended($1, 7))`, req.SessionID); err != nil {
			return err
		}
		var held int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE state = 'claimed' AND claimed_by_session_id = $1`, req.SessionID).Scan(&held); err != nil {
			return err
		}
		want := min(req.Limit, req.MaxConcurrent-held)
		var types []string
		if len(req.Types) > 0 {
			types = req.Types
		}
		for _, lesson := range req.Lessons {
			if want <= 0 {
				return nil
			}
			got, err := queryTasks(ctx, tx, `
				WITH picked AS (
					SELECT task_id FROM taskqueue.tasks
					WHERE state = 'pending' AND lesson_id = $5 AND run_at <= now()
					  AND ($3::text[] IS NULL OR task_type = ANY($3))
					ORDER BY priority DESC, run_at, task_id
					LIMIT $4 FOR UPDATE SKIP LOCKED)`+claimSet,
				req.SessionID, req.SessionName, types, want, lesson)
			if err != nil {
				return err
			}
			claimed = append(claimed, got...)
			want -= len(got)
		}
		if want <= 0 {
			return nil
		}
		got, err := queryTasks(ctx, tx, `
			WITH picked AS (
				SELECT task_id FROM taskqueue.tasks
				WHERE state = 'pending' AND run_at <= now()
				  AND ($3::text[] IS NULL OR task_type = ANY($3))
				ORDER BY priority DESC, lesson_priority DESC, run_at, task_id
				LIMIT $4 FOR UPDATE SKIP LOCKED)`+claimSet,
			req.SessionID, req.SessionName, types, want)
		claimed = append(claimed, got...)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]task.Claim, len(claimed))
	for i, t := range claimed {
		out[i] = task.Claim{Task: t, Token: task.ClaimTokenOf(t)}
	}
	return out, nil
}

// currentLessonPriority is, in an UPDATE of task t, its lesson's priority
// now. UpdateLesson copies a new priority to the lesson's pending tasks only;
// a task that was claimed, dead or cancelled at the time takes it up here,
// when it goes back to pending.
const currentLessonPriority = `coalesce((SELECT l.priority FROM taskqueue.lessons l WHERE l.lesson_id = t.lesson_id), t.lesson_priority)`

// settle runs an UPDATE guarded by the claim token; when it matches nothing
// the claim was lost (or the task is gone).
func (r *TaskPostgresRepository) settle(ctx context.Context, tok task.ClaimToken, sql string, args ...any) (task.Task, error) {
	return r.updateOne(ctx, r.pool, tok.TaskID, func(t task.Task) error { return task.ClaimLostError(t, tok) }, sql, args...)
}

const claimGuard = `t.task_id = $1 AND t.attempt = $2 AND t.state = 'claimed' AND t.claimed_by_session_id = $3`

// Extend moves a held claim's expiry.
func (r *TaskPostgresRepository) Extend(ctx context.Context, tok task.ClaimToken, sessionID string, d time.Duration) (time.Time, error) {
	t, err := r.settle(ctx, tok, `
		UPDATE taskqueue.tasks t SET claim_expires_at = now() + $4 * interval '1 millisecond', updated_at = now()
		WHERE `+claimGuard+` RETURNING `+taskColumns, tok.TaskID, tok.Attempt, sessionID, d.Milliseconds())
	return t.ClaimExpiresAt, err
}

// Complete settles a held claim as completed.
func (r *TaskPostgresRepository) Complete(ctx context.Context, tok task.ClaimToken, sessionID string, result json.RawMessage) (task.Task, error) {
	var res *string
	if result != nil {
		s := string(result)
		res = &s
	}
	return r.settle(ctx, tok, `
		UPDATE taskqueue.tasks t SET state = 'completed', result = $4::jsonb, claim_expires_at = NULL,
		       finished_at = now(), updated_at = now()
		WHERE `+claimGuard+` RETURNING `+taskColumns, tok.TaskID, tok.Attempt, sessionID, res)
}

// CompleteMany settles a batch in one statement and one commit. The
// progress trigger updates the lessons row by row, in whatever order the
// update meets its tasks; so the batch first locks its lessons in lesson
// order, or two batches would deadlock (and drag the single completions
// queued behind them into the cycle). A deadlock with anything else is
// retried.
func (r *TaskPostgresRepository) CompleteMany(ctx context.Context, sessionID string, claims []task.Completion) ([]task.Task, []error, error) {
	ids, attempts, results := make([]string, len(claims)), make([]int32, len(claims)), make([]*string, len(claims))
	for i, c := range claims {
		ids[i], attempts[i] = c.Token.TaskID, int32(c.Token.Attempt)
		if c.Result != nil {
			s := string(c.Result)
			results[i] = &s
		}
	}
	var rows []task.Task
	var err error
	for try := 0; try < 5; try++ {
		err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `
				SELECT 1 FROM taskqueue.lessons
				WHERE lesson_id IN (SELECT lesson_id FROM taskqueue.tasks WHERE task_id = ANY($1::uuid[]))
				ORDER BY lesson_id FOR NO KEY UPDATE`, ids); err != nil {
				return err
			}
			var err error
			rows, err = queryTasks(ctx, tx, `
				WITH input AS (
					SELECT * FROM unnest($1::uuid[], $2::int[], $3::jsonb[]) AS i(task_id, attempt, result))
				UPDATE taskqueue.tasks t SET state = 'completed', result = i.result, claim_expires_at = NULL,
				       finished_at = now(), updated_at = now()
				FROM input i
				WHERE t.task_id = i.task_id AND t.attempt = i.attempt AND t.state = 'claimed' AND t.claimed_by_session_id = $4
				RETURNING `+taskColumns, ids, attempts, results, sessionID)
			return err
		})
		if !pg.HasCode(err, pg.DeadlockDetected) {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	done := make(map[string]task.Task, len(rows))
	for _, t := range rows {
		done[t.ID] = t
	}
	out, errs := make([]task.Task, len(claims)), make([]error, len(claims))
	for i, c := range claims {
		if t, ok := done[c.Token.TaskID]; ok && t.Attempt == c.Token.Attempt {
			out[i] = t
			continue
		}
		t, err := r.Get(ctx, c.Token.TaskID)
		if err != nil {
			errs[i] = err
			continue
		}
		errs[i] = task.ClaimLostError(t, c.Token)
	}
	return out, errs, nil
}

// Fail settles a held claim as failed.
func (r *TaskPostgresRepository) Fail(ctx context.Context, tok task.ClaimToken, sessionID, message string, retryable bool, backoff time.Duration) (task.Task, bool, error) {
	t, err := r.settle(ctx, tok, `
		UPDATE taskqueue.tasks t SET
		       state = CASE WHEN $4 AND t.attempt < t.max_attempts THEN 'pending' ELSE 'dead' END,
		       run_at = CASE WHEN $4 AND t.attempt < t.max_attempts THEN now() + $5 * interval '1 millisecond' ELSE t.run_at END,
		       finished_at = CASE WHEN $4 AND t.attempt < t.max_attempts THEN NULL ELSE now() END,
		       last_error = $6, claimed_by_session_id = NULL, claimed_by_session_name = NULL,
		       claim_expires_at = NULL, lesson_priority = `+currentLessonPriority+`, updated_at = now()
		WHERE `+claimGuard+` RETURNING `+taskColumns, tok.TaskID, tok.Attempt, sessionID, retryable, backoff.Milliseconds(), message)
	return t, err == nil && t.State == task.Pending, err
}
