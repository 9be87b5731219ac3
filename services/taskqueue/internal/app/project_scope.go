package app

import (
	"context"
	"errors"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Project scope of task and lesson calls (docs/SECURITY.md, "Operators
// scoped to projects"). A task belongs to its lesson's project. For an
// operator credential limited to projects:
//   - a task, lesson or affinity addressed by id (or idempotency key) outside
//     those projects looks exactly like a missing one: NOT_FOUND, the same
//     error, so the reply says nothing about other projects;
//   - a task without a lesson belongs to no project: only an admin or an
//     unscoped operator may enqueue or touch one (enqueue: PERMISSION_DENIED;
//     by id: NOT_FOUND, as above);
//   - lists are filtered to the credential's projects in SQL, before paging.
// Every other caller passes without a lookup.

// errNoProject refuses a lessonless task to a project-scoped operator.
var errNoProject = domainerr.New(domainerr.PermissionDenied, "lesson_id: a task without a lesson belongs to no project; only an admin or an operator not limited to projects may enqueue one")

// scopeProjects returns the projects the caller is limited to, or nil when
// it is not limited (admin, unscoped operator, session, service, auth off).
func scopeProjects(ctx context.Context) []string {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Role != auth.RoleOperator || len(p.Projects) == 0 {
		return nil
	}
	return p.Projects
}

// lessonInScope checks that a scoped caller may touch the lesson; a lesson
// outside its projects is task.ErrLessonNotFound.
func (q *Queue) lessonInScope(ctx context.Context, lessonID string) error {
	if scopeProjects(ctx) == nil {
		return nil
	}
	l, err := q.lessons.GetLesson(ctx, lessonID)
	if err != nil {
		return err
	}
	return lessonVisible(ctx, l)
}

// lessonVisible is task.ErrLessonNotFound for a lesson outside a scoped
// caller's projects.
func lessonVisible(ctx context.Context, l task.Lesson) error {
	if auth.RequireProject(ctx, l.Project) != nil {
		return task.ErrLessonNotFound
	}
	return nil
}

// taskInScope checks that a scoped caller may see t; a task outside its
// projects (or without a lesson) is task.ErrTaskNotFound.
func (q *Queue) taskInScope(ctx context.Context, t task.Task) error {
	if scopeProjects(ctx) == nil {
		return nil
	}
	if t.LessonID == "" {
		return task.ErrTaskNotFound
	}
	if err := q.lessonInScope(ctx, t.LessonID); err != nil {
		if errors.Is(err, task.ErrLessonNotFound) {
			return task.ErrTaskNotFound
		}
		return err
	}
	return nil
}

// enqueueInScope checks every lesson of a batch for a scoped caller: a
// lessonless task is errNoProject, a lesson outside its projects the
// INVALID_ARGUMENT an unknown lesson gets from the store.
func (q *Queue) enqueueInScope(ctx context.Context, tasks []task.NewTask) error {
	if scopeProjects(ctx) == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, t := range tasks {
		if t.LessonID == "" {
			return errNoProject
		}
		if seen[t.LessonID] {
			continue
		}
		seen[t.LessonID] = true
		if err := q.lessonInScope(ctx, t.LessonID); err != nil {
			if errors.Is(err, task.ErrLessonNotFound) {
				return domainerr.Invalid("lesson_id", "no such lesson")
			}
			return err
		}
	}
	return nil
}

// errKeyOutOfScope refuses an enqueue whose idempotency key is already taken
// by a task the scoped caller may not see. Keys are one namespace across
// projects, so the refusal says the key is taken, and nothing of the task.
var errKeyOutOfScope = domainerr.New(domainerr.AlreadyExists, "idempotency_key is already used by a task outside this credential's projects")

// duplicatesInScope checks that no duplicate an enqueue returned is a task
// the scoped caller may not see.
func (q *Queue) duplicatesInScope(ctx context.Context, out []task.Enqueued) error {
	if scopeProjects(ctx) == nil {
		return nil
	}
	for _, e := range out {
		if !e.Duplicate {
			continue
		}
		if err := q.taskInScope(ctx, e.Task); err != nil {
			if errors.Is(err, task.ErrTaskNotFound) {
				return errKeyOutOfScope
			}
			return err
		}
	}
	return nil
}
