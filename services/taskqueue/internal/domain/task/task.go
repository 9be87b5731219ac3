// Package task is the task queue's domain: tasks, lessons, session
// affinities, claims and their tokens (claim_token.go), the sessions that
// hold claims and when they may claim (session.go), the rules that decide
// retries, and the repositories the adapters implement (repository.go: one
// each for tasks, lessons and affinities). It knows nothing of gRPC or SQL.
package task

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// State is where a task is in its life.
type State string

// States.
const (
	Pending   State = "pending"
	Claimed   State = "claimed"
	Completed State = "completed"
	Dead      State = "dead"
	Cancelled State = "cancelled"
)

// Task is a unit of work.
type Task struct {
	ID                   string
	IdempotencyKey       string
	Type                 string
	Payload              json.RawMessage
	Priority             int
	LessonID             string
	State                State
	Attempt              int
	MaxAttempts          int
	RunAt                time.Time
	ClaimTimeout         time.Duration
	ClaimedBySessionID   string
	ClaimedBySessionName string
	ClaimExpiresAt       time.Time
	Result               json.RawMessage
	LastError            string
	CreatedAt            time.Time
	UpdatedAt            time.Time
	FinishedAt           time.Time
}

// NewTask is a task to enqueue, validated by the port.
type NewTask struct {
	ID             string
	IdempotencyKey string
	Type           string
	Payload        json.RawMessage
	Priority       int
	LessonID       string
	RunAt          time.Time // zero: now
	MaxAttempts    int
	ClaimTimeout   time.Duration
}

// Enqueued is the outcome of one enqueue.
type Enqueued struct {
	Task      Task
	Duplicate bool
}

// Claim is a task held by a session.
type Claim struct {
	Task  Task
	Token ClaimToken
}

// Backoff is the delay before retry number attempt (1 after the first
// failure): exponential from one second, capped at an hour, with full jitter
// in its upper half so that a burst of failures does not come back together.
func Backoff(attempt int) time.Duration {
	base := time.Second * time.Duration(math.Pow(2, float64(min(max(attempt-1, 0), 12))))
	base = min(base, time.Hour)
	return base/2 + time.Duration(rand.Int64N(int64(base/2)+1))
}

// Domain errors.
var (
	ErrTaskNotFound      = domainerr.New(domainerr.NotFound, "task not found")
	ErrLessonNotFound    = domainerr.New(domainerr.NotFound, "lesson not found")
	ErrAffinityNotFound  = domainerr.New(domainerr.NotFound, "affinity not found")
	ErrLessonExists      = domainerr.New(domainerr.AlreadyExists, "a lesson with this name already exists in the project")
	ErrClaimLost         = domainerr.New(domainerr.FailedPrecondition, "claim is no longer held: the task was taken back, settled or cancelled since this claim token was issued")
	ErrNotCancellable    = domainerr.New(domainerr.FailedPrecondition, "task has already finished")
	ErrNotRetryable      = domainerr.New(domainerr.FailedPrecondition, "only a dead or cancelled task can be retried")
	ErrSessionFailed     = domainerr.New(domainerr.FailedPrecondition, "session has failed or deregistered")
	ErrSessionSuspect    = domainerr.New(domainerr.FailedPrecondition, "session is suspect (its lease ran out): heartbeat before claiming")
	ErrSessionUnhealthy  = domainerr.New(domainerr.FailedPrecondition, "session is not healthy")
	ErrOutsideWindow     = domainerr.New(domainerr.FailedPrecondition, "session is outside its time windows")
	ErrCoordinatorAbsent = domainerr.New(domainerr.Unavailable, "the coordinator cannot be reached to check the session; retry")
)

// ClaimLostError explains why a claim token is stale.
func ClaimLostError(t Task, tok ClaimToken) error {
	return fmt.Errorf("%w (task is %s at attempt %d; token is for attempt %d)", ErrClaimLost, t.State, t.Attempt, tok.Attempt)
}
