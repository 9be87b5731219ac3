package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// CreateLesson creates a lesson.
func (q *Queue) CreateLesson(ctx context.Context, l task.Lesson) (task.Lesson, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return task.Lesson{}, fmt.Errorf("generate lesson id: %w", err)
	}
	l.ID = id.String()
	if l.Metadata == nil {
		l.Metadata = json.RawMessage("{}")
	}
	return q.lessons.CreateLesson(ctx, l)
}

// GetLesson returns a lesson with its progress.
func (q *Queue) GetLesson(ctx context.Context, id string) (task.Lesson, error) {
	l, err := q.lessons.GetLesson(ctx, id)
	if err != nil {
		return task.Lesson{}, err
	}
	if err := lessonVisible(ctx, l); err != nil {
		return task.Lesson{}, err
	}
	return l, nil
}

// ListLessons lists lessons; a caller limited to projects sees only theirs.
func (q *Queue) ListLessons(ctx context.Context, f task.LessonFilter) ([]task.Lesson, error) {
	f.Projects = scopeProjects(ctx)
	return q.lessons.ListLessons(ctx, f)
}

// UpdateLesson changes a lesson.
func (q *Queue) UpdateLesson(ctx context.Context, id string, u task.LessonUpdate) (task.Lesson, error) {
	if err := q.lessonInScope(ctx, id); err != nil {
		return task.Lesson{}, err
	}
	return q.lessons.UpdateLesson(ctx, id, u)
}
