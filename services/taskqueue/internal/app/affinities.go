package app

import (
	"context"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// SetAffinity creates or replaces an affinity.
func (q *Queue) SetAffinity(ctx context.Context, a task.Affinity) (task.Affinity, error) {
	if _, err := q.lessons.GetLesson(ctx, a.LessonID); err != nil {
		return task.Affinity{}, err
	}
	return q.affinities.SetAffinity(ctx, a)
}

// ListAffinities lists affinities.
func (q *Queue) ListAffinities(ctx context.Context, f task.AffinityFilter) ([]task.Affinity, error) {
	return q.affinities.ListAffinities(ctx, f)
}

// DeleteAffinity removes an affinity.
func (q *Queue) DeleteAffinity(ctx context.Context, sessionName, lessonID string) error {
	return q.affinities.DeleteAffinity(ctx, sessionName, lessonID)
}
