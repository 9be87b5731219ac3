package adapters

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// The task repository's claims: handing tasks out, and settling, extending
// and failing what was handed out, each fenced by the claim token.

const claimSet = `
	UPDATE taskqueue.tasks t SET state = 'claimed', attempt = t.attempt + 1,
	       claimed_by_session_id = $1, claimed_by_session_name = $2,
	       claim_expires_at = now() + t.claim_timeout_ms * interval '1 millisecond', updated_at = now()
	WHERE t.task_id = ANY($3::uuid[])
	RETURNING ` + taskColumns

// claimCandidates wraps a query that picks and locks the next ready tasks
// (columns t.*, in claim order, as "picked"; $1 the types, $2 the limit) so
// that the rows come back in that order, cut once the JSON of those before
// them passes the byte budget ($3, NULL for none): what is left out could
// not have fitted, since a task's claim takes about its payload's length or
// more, and is never sent over. n counts the rows picked, so that the
// caller can tell the budget cut some. The exact size of each claim is
// measured in Go.
func claimCandidates(picked, order string) string {
	return `
		WITH picked AS (` + picked + `)
		SELECT ` + taskColumns + `, n FROM (
			SELECT p.*, count(*) OVER () AS n,
			       sum(coalesce(octet_length(p.payload::text), 0)) OVER (ORDER BY ` + order + ` ROWS UNBOUNDED PRECEDING)
			         - coalesce(octet_length(p.payload::text), 0) AS before
			FROM picked p) t
		WHERE $3::bigint IS NULL OR t.before <= $3
		ORDER BY ` + order
}

// Claim claims within the session's free capacity, serialised per session
// so that two concurrent claims cannot both fill the same free slots. It is
// one statement, made together with the claims of other callers that
// arrive meanwhile (claimCombiner, taskqueue.claim_tasks_many in migration
// 0005): the sessions' locks, the counts of their claims, their affinity
// lessons, the candidates and the claims, in one round trip and one commit.
//
// The reply's byte budget is kept inside the claim, so that no task is ever
// claimed for a reply that cannot carry it. The statement keeps it with a
// bound on each claim's size; when the bound stops it short (payloads in
// the tens of kilobytes) the claims are measured exactly here and the claim
// goes on with what is left of the budget (claimExact).
func (r *TaskPostgresRepository) Claim(ctx context.Context, req task.ClaimRequest) ([]task.Claim, bool, error) {
	at := req.Now
	if at.IsZero() {
		at = time.Now()
	}
	req.Now = at
	claimed, cut, err := r.claims.claim(ctx, req)
	if err != nil {
		return nil, false, err
	}
	if !cut {
		return claimed, false, nil
	}
	left := req.MaxBytes
	if req.Size != nil {
		for _, c := range claimed {
			left -= req.Size(c)
		}
	}
	rest, more, err := r.claimExact(ctx, req, len(claimed), left, at)
	if err != nil {
		// What was claimed is committed and must reach its session, or it
		// would sit invisible until its lease ran out: hand it out, and say
		// that more may be ready, which the next claim will find.
		return claimed, true, nil
	}
	return append(claimed, rest...), more, nil
}

// claimExact claims on after a claim whose size bound stopped short: after
// claims already made, within budget bytes measured exactly by req.Size.
// Candidates are locked, measured as the reply will carry them, and only
// those that fit are claimed; the rest stay pending for another claim.
func (r *TaskPostgresRepository) claimExact(ctx context.Context, req task.ClaimRequest, after, budget int, at time.Time) ([]task.Claim, bool, error) {
	var claimed []task.Claim
	var more bool
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		claimed, more = nil, false
		// The settings are claim_tasks's (migration 0003), for the same
		// reasons.
		if _, err := tx.Exec(ctx, `SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true),
			set_config('jit', 'off', true), pg_advisory_xact_lock(hashtextextended($1, 7))`, req.SessionID); err != nil {
			return err
		}
		var held int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE state = 'claimed' AND claimed_by_session_id = $1`, req.SessionID).Scan(&held); err != nil {
			return err
		}
		want := min(req.Limit-after, req.MaxConcurrent-held)
		if want <= 0 {
			return nil
		}
		lrows, err := tx.Query(ctx, `SELECT l::text FROM taskqueue.session_lessons($1, $2) l`, req.SessionName, at)
		if err != nil {
			return err
		}
		lessons, err := pgx.CollectRows(lrows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		var types []string
		if len(req.Types) > 0 {
			types = req.Types
		}
		// claim claims the candidates one query picks, in order, while they
		// fit what is left of the budget.
		claim := func(picked, order string, args ...any) (bool, error) {
			b := int64(max(budget, 0))
			args = append([]any{types, want, &b}, args...)
			rows, err := tx.Query(ctx, claimCandidates(picked, order), args...)
			if err != nil {
				return false, err
			}
			cands, err := pgx.CollectRows(rows, scanCandidate)
			if err != nil {
				return false, err
			}
			stopped := len(cands) > 0 && cands[0].picked > len(cands)
			var ids []string
			for _, c := range cands {
				if req.Size != nil {
					asClaimed := c.task
					asClaimed.State, asClaimed.Attempt = task.Claimed, c.task.Attempt+1
					asClaimed.ClaimedBySessionID, asClaimed.ClaimedBySessionName = req.SessionID, req.SessionName
					asClaimed.ClaimExpiresAt, asClaimed.UpdatedAt = time.Now().Add(c.task.ClaimTimeout), time.Now()
					n := req.Size(task.Claim{Task: asClaimed, Token: task.ClaimTokenOf(asClaimed)})
					if n > budget {
						stopped = true
						break
					}
					budget -= n
				}
				ids = append(ids, c.task.ID)
			}
			if len(ids) == 0 {
				return stopped, nil
			}
			got, err := queryTasks(ctx, tx, claimSet, req.SessionID, req.SessionName, ids)
			if err != nil {
				return false, err
			}
			byID := make(map[string]task.Task, len(got))
			for _, t := range got {
				byID[t.ID] = t
			}
			for _, id := range ids {
				if t, ok := byID[id]; ok {
					claimed = append(claimed, task.Claim{Task: t, Token: task.ClaimTokenOf(t)})
				}
			}
			want -= len(got)
			return stopped, nil
		}
		// The arguments after the first three are $4 on.
		for _, lesson := range lessons {
			if want <= 0 || more {
				return nil
			}
			more, err = claim(`
				SELECT t.* FROM taskqueue.tasks t
				WHERE t.state = 'pending' AND t.lesson_id = $4 AND t.run_at <= now()
				  AND ($1::text[] IS NULL OR t.task_type = ANY($1))
				ORDER BY t.priority DESC, t.run_at, t.task_id
				LIMIT $2 FOR UPDATE SKIP LOCKED`, `priority DESC, run_at, task_id`, lesson)
			if err != nil {
				return err
			}
		}
		if want <= 0 || more {
			return nil
		}
		more, err = claim(`
			SELECT t.* FROM taskqueue.tasks t
			WHERE t.state = 'pending' AND t.run_at <= now()
			  AND ($1::text[] IS NULL OR t.task_type = ANY($1))
			ORDER BY t.priority DESC, t.lesson_priority DESC, t.run_at, t.task_id
			LIMIT $2 FOR UPDATE SKIP LOCKED`, `priority DESC, lesson_priority DESC, run_at, task_id`)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return claimed, more, nil
}

// candidate is a ready task locked for a claim, and how many were picked
// with it before the byte budget cut the rows.
type candidate struct {
	task   task.Task
	picked int
}

func scanCandidate(row pgx.CollectableRow) (candidate, error) {
	var c candidate
	var err error
	c.task, err = scanTaskWith(row, &c.picked)
	return c, err
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

// CompleteMany settles a batch in one statement and one commit, a single
// round trip, together with the batches of other callers that arrive
// meanwhile (completionCombiner). Lesson progress follows in the same
// statement, each lesson written once and in lesson order (migrations 0004
// and 0006), so batches need not lock their lessons first.
func (r *TaskPostgresRepository) CompleteMany(ctx context.Context, sessionID string, claims []task.Completion) ([]task.Task, []error, error) {
	rows, err := r.completions.complete(ctx, sessionID, claims)
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
