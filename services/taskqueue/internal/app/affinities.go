package app

import (
	"context"
	"errors"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// SetAffinity creates or replaces an affinity.
func (q *Queue) SetAffinity(ctx context.Context, a task.Affinity) (task.Affinity, error) {
	l, err := q.lessons.GetLesson(ctx, a.LessonID)
	if err != nil {
		return task.Affinity{}, err
	}
	if err := lessonVisible(ctx, l); err != nil {
		return task.Affinity{}, err
	}
	return q.affinities.SetAffinity(ctx, a)
}

// ListAffinities lists affinities; a caller limited to projects sees only
// those of their lessons.
func (q *Queue) ListAffinities(ctx context.Context, f task.AffinityFilter) ([]task.Affinity, error) {
	f.Projects = scopeProjects(ctx)
	return q.affinities.ListAffinities(ctx, f)
}

// DeleteAffinity removes an affinity. A lesson outside a scoped caller's
// projects is task.ErrAffinityNotFound, as a missing affinity is.
func (q *Queue) DeleteAffinity(ctx context.Context, sessionName, lessonID string) error {
	if err := q.lessonInScope(ctx, lessonID); err != nil {
		if errors.Is(err, task.ErrLessonNotFound) {
			return task.ErrAffinityNotFound
		}
		return err
	}
	return q.affinities.DeleteAffinity(ctx, sessionName, lessonID)
}
