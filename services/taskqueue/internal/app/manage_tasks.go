package app

import (
	"context"
	"time"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Cancel cancels a task that has not finished.
func (q *Queue) Cancel(ctx context.Context, id, reason string) (task.Task, error) {
	return q.tasks.Cancel(ctx, id, reason)
}

// Retry revives a dead or cancelled task.
func (q *Queue) Retry(ctx context.Context, id string, reset bool, runAt time.Time) (task.Task, error) {
	t, err := q.tasks.Retry(ctx, id, reset, runAt)
	if err == nil {
		q.notifier.Wake()
	}
	return t, err
}

// Get returns a task by id or, when id is empty, by idempotency key.
func (q *Queue) Get(ctx context.Context, id, key string) (task.Task, error) {
	if id != "" {
		return q.tasks.Get(ctx, id)
	}
	return q.tasks.GetByKey(ctx, key)
}

// List lists tasks.
func (q *Queue) List(ctx context.Context, f task.ListFilter) ([]task.Task, error) {
	return q.tasks.List(ctx, f)
}
