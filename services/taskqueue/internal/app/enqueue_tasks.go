package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Enqueue adds tasks, filling in defaults.
func (q *Queue) Enqueue(ctx context.Context, tasks []task.NewTask) ([]task.Enqueued, error) {
	if err := q.enqueueInScope(ctx, tasks); err != nil {
		return nil, err
	}
	for i := range tasks {
		t := &tasks[i]
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("generate task id: %w", err)
		}
		t.ID = id.String()
		if t.MaxAttempts == 0 {
			t.MaxAttempts = q.cfg.MaxAttempts
		}
		if t.ClaimTimeout == 0 {
			t.ClaimTimeout = q.cfg.ClaimTimeout
		}
		if t.Payload == nil {
			t.Payload = json.RawMessage("{}")
		}
	}
	out, err := q.tasks.Enqueue(ctx, tasks)
	if err != nil {
		return nil, err
	}
	fresh := 0
	for _, e := range out {
		if !e.Duplicate {
			fresh++
			q.metrics.typed(q.metrics.enqueued, e.Task.Type).Inc()
		}
	}
	if fresh > 0 {
		q.notifier.Wake()
	}
	if err := q.duplicatesInScope(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}
