package app

import (
	"context"
	"time"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Cancel cancels a task that has not finished.
func (q *Queue) Cancel(ctx context.Context, id, reason string) (task.Task, error) {
	if err := q.taskIDInScope(ctx, id); err != nil {
		return task.Task{}, err
	}
	return q.tasks.Cancel(ctx, id, reason)
}

// Retry revives a dead or cancelled task.
func (q *Queue) Retry(ctx context.Context, id string, reset bool, runAt time.Time) (task.Task, error) {
	if err := q.taskIDInScope(ctx, id); err != nil {
		return task.Task{}, err
	}
	t, err := q.tasks.Retry(ctx, id, reset, runAt)
	if err == nil {
		q.notifier.Wake()
	}
	return t, err
}

// Get returns a task by id or, when id is empty, by idempotency key.
func (q *Queue) Get(ctx context.Context, id, key string) (task.Task, error) {
	var t task.Task
	var err error
	if id != "" {
		t, err = q.tasks.Get(ctx, id)
	} else {
		t, err = q.tasks.GetByKey(ctx, key)
	}
	if err != nil {
		return task.Task{}, err
	}
	if err := q.taskInScope(ctx, t); err != nil {
		return task.Task{}, err
	}
	return t, nil
}

// List lists tasks; a caller limited to projects sees only their tasks.
func (q *Queue) List(ctx context.Context, f task.ListFilter) ([]task.Task, error) {
	f.Projects = scopeProjects(ctx)
	return q.tasks.List(ctx, f)
}

// taskIDInScope checks, for a caller limited to projects, that the task is
// one of theirs before it is changed. A task's lesson never changes, so the
// check cannot go stale between it and the change.
func (q *Queue) taskIDInScope(ctx context.Context, id string) error {
	if scopeProjects(ctx) == nil {
		return nil
	}
	t, err := q.tasks.Get(ctx, id)
	if err != nil {
		return err
	}
	return q.taskInScope(ctx, t)
}
