package task

import (
	"context"
	"encoding/json"
	"time"
)

// ClaimRequest asks the repository for up to Limit ready tasks for a session.
type ClaimRequest struct {
	SessionID   string
	SessionName string
	Types       []string
	Limit       int
	// MaxConcurrent is the session's capacity; claims it holds count against it.
	MaxConcurrent int
	// Now is the moment the session's affinity time windows are read at:
	// the tasks of the lessons it has affinity with then, best first, are
	// claimed before any other. Zero means the clock's now.
	Now time.Time
	// MaxBytes, when positive, bounds the claims' size in the reply: a task
	// whose claim would take the total past it is left pending, unclaimed,
	// and the claim reports that more may be ready. The first task is
	// claimed whatever its size. Size measures one claim as the reply will
	// carry it (the task as claimed, with its token and lease).
	MaxBytes int
	Size     func(Claim) int
}

// ListFilter selects tasks for List. Results are newest first; After is the
// keyset cursor (created_at, task_id) of the last task of the previous page.
type ListFilter struct {
	States             []State
	Types              []string
	LessonID           string
	ClaimedBySessionID string
	// Projects, when set, keeps only tasks whose lesson is in one of them
	// (a caller limited to projects; lessonless tasks are left out).
	Projects       []string
	AfterCreatedAt time.Time
	AfterID        string
	Limit          int
	// MaxBytes, when positive, ends the page once the tasks before the next
	// carry this many bytes of payload and result JSON: the reply could not
	// hold it, so it is not read. The first task is always returned.
	MaxBytes int
}

// LessonFilter selects lessons; newest first, keyset cursor After*.
type LessonFilter struct {
	Project string
	// Projects, when set, keeps only lessons of these projects.
	Projects       []string
	AfterCreatedAt time.Time
	AfterID        string
	Limit          int
}

// AffinityFilter selects affinities by session name and/or lesson.
type AffinityFilter struct {
	SessionName string
	LessonID    string
	// Projects, when set, keeps only affinities of these projects' lessons.
	Projects         []string
	AfterSessionName string
	AfterLessonID    string
	Limit            int
}

// Completion is one claim of a batch to settle as completed.
type Completion struct {
	Token  ClaimToken
	Result json.RawMessage
}

// Requeued says what a requeue did to one task.
type Requeued struct {
	TaskID string
	Dead   bool
}

// Repository keeps tasks. Every method is atomic.
type Repository interface {
	// Enqueue inserts tasks, each idempotent by key; an existing key returns
	// the existing task as a duplicate. Unknown lessons fail the whole batch.
	Enqueue(ctx context.Context, tasks []NewTask) ([]Enqueued, error)
	// Claim claims ready tasks for a session within its free capacity and
	// req.MaxBytes; more reports that the byte budget stopped it before
	// req.Limit and the session's capacity.
	Claim(ctx context.Context, req ClaimRequest) (claims []Claim, more bool, err error)
	// Extend moves a held claim's expiry to now + d.
	Extend(ctx context.Context, tok ClaimToken, sessionID string, d time.Duration) (time.Time, error)
	// Complete settles a held claim as completed.
	Complete(ctx context.Context, tok ClaimToken, sessionID string, result json.RawMessage) (Task, error)
	// CompleteMany settles a batch of one session's held claims as completed
	// in one transaction. Each claim gets its task or its own error.
	CompleteMany(ctx context.Context, sessionID string, claims []Completion) ([]Task, []error, error)
	// Fail settles a held claim as failed: retried after backoff(attempt) while
	// retryable and attempts remain, dead otherwise. It reports whether the
	// task will run again.
	Fail(ctx context.Context, tok ClaimToken, sessionID, message string, retryable bool, backoff time.Duration) (Task, bool, error)
	// Cancel cancels a pending or claimed task.
	Cancel(ctx context.Context, id, reason string) (Task, error)
	// Retry revives a dead or cancelled task.
	Retry(ctx context.Context, id string, resetAttempts bool, runAt time.Time) (Task, error)
	Get(ctx context.Context, id string) (Task, error)
	GetByKey(ctx context.Context, key string) (Task, error)
	List(ctx context.Context, f ListFilter) ([]Task, error)
	// RequeueExpired takes back up to limit claims whose lease ran out. The
	// attempt they used counts: a task out of attempts is dead.
	RequeueExpired(ctx context.Context, limit int) ([]Requeued, error)
	// RequeueSession takes back every claim of a session, with the same rule.
	RequeueSession(ctx context.Context, sessionID, reason string) ([]Requeued, error)
	// ClaimingSessions lists the sessions that hold claims.
	ClaimingSessions(ctx context.Context) ([]string, error)
	// Prune deletes completed and cancelled tasks finished before
	// finishedBefore, and dead ones finished before deadBefore.
	Prune(ctx context.Context, finishedBefore, deadBefore time.Time) (int64, error)
	// Depth counts tasks by state and type.
	Depth(ctx context.Context) (map[State]map[string]int64, error)
}

// LessonRepository keeps lessons and their progress counters (which the
// task store keeps current in the same transaction as each task change).
type LessonRepository interface {
	// CreateLesson inserts a lesson; a name taken in its project is
	// ErrLessonExists.
	CreateLesson(ctx context.Context, l Lesson) (Lesson, error)
	GetLesson(ctx context.Context, id string) (Lesson, error)
	ListLessons(ctx context.Context, f LessonFilter) ([]Lesson, error)
	// UpdateLesson changes the fields u names; a new priority reaches the
	// lesson's pending tasks in the same transaction.
	UpdateLesson(ctx context.Context, id string, u LessonUpdate) (Lesson, error)
}

// AffinityRepository keeps session affinities.
type AffinityRepository interface {
	// SetAffinity creates or replaces an affinity; an unknown lesson is
	// ErrLessonNotFound.
	SetAffinity(ctx context.Context, a Affinity) (Affinity, error)
	ListAffinities(ctx context.Context, f AffinityFilter) ([]Affinity, error)
	DeleteAffinity(ctx context.Context, sessionName, lessonID string) error
}
