package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// authorize checks that the caller is the session it claims to be, and that
// the session has not ended: a failed or deregistered session has lost its
// claims, even while the queue has yet to take them back.
func (q *Queue) authorize(ctx context.Context, sessionID, token string) error {
	s, err := q.sessions.Authenticate(ctx, sessionID, token)
	if err != nil {
		return err
	}
	if s.Ended() {
		return task.ErrSessionFailed
	}
	return nil
}

// ExtendClaim pushes a held claim's lease; zero d uses the task's claim timeout.
func (q *Queue) ExtendClaim(ctx context.Context, tok task.ClaimToken, sessionID, sessionToken string, d time.Duration) (time.Time, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return time.Time{}, err
	}
	if d == 0 {
		t, err := q.tasks.Get(ctx, tok.TaskID)
		if err != nil {
			return time.Time{}, err
		}
		d = t.ClaimTimeout
	}
	return q.tasks.Extend(ctx, tok, sessionID, d)
}

// Complete settles a held claim as completed.
func (q *Queue) Complete(ctx context.Context, tok task.ClaimToken, sessionID, sessionToken string, result json.RawMessage) (task.Task, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return task.Task{}, err
	}
	t, err := q.tasks.Complete(ctx, tok, sessionID, result)
	if err == nil {
		q.metrics.typed(q.metrics.completed, t.Type).Inc()
	}
	return t, err
}

// CompleteMany settles a batch of one session's claims as completed in one
// transaction; each claim gets its task or its own error.
func (q *Queue) CompleteMany(ctx context.Context, sessionID, sessionToken string, claims []task.Completion) ([]task.Task, []error, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return nil, nil, err
	}
	tasks, errs, err := q.tasks.CompleteMany(ctx, sessionID, claims)
	if err != nil {
		return nil, nil, err
	}
	for i, t := range tasks {
		if errs[i] == nil {
			q.metrics.typed(q.metrics.completed, t.Type).Inc()
		}
	}
	return tasks, errs, nil
}

// Fail settles a held claim as failed; a retryable failure comes back after
// an exponential backoff with jitter while attempts remain.
func (q *Queue) Fail(ctx context.Context, tok task.ClaimToken, sessionID, sessionToken, message string, retryable bool) (task.Task, bool, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return task.Task{}, false, err
	}
	t, retry, err := q.tasks.Fail(ctx, tok, sessionID, message, retryable, task.Backoff(tok.Attempt))
	if err != nil {
		return t, retry, err
	}
	if retry {
		q.metrics.typed(q.metrics.retried, t.Type).Inc()
	} else {
		q.metrics.typed(q.metrics.dead, t.Type).Inc()
	}
	return t, retry, nil
}
