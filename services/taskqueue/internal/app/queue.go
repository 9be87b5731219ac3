// Package app holds the task queue's use cases, a file each:
// enqueue_tasks.go, claim_tasks.go (long-poll), settle_claims.go (extend,
// complete, fail), manage_tasks.go (cancel, retry, get, list), lessons.go,
// affinities.go, project_scope.go (what an operator limited to projects may
// touch), and background.go, the work that takes back claims whose
// holder is gone and prunes finished tasks. It talks to PostgreSQL only
// through the domain's repositories and to the coordinator only through
// task.Sessions.
package app

import (
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Config tunes the queue.
type Config struct {
	// MaxAttempts is a task's default max_attempts (TASK_MAX_RETRIES).
	MaxAttempts int
	// ClaimTimeout is a task's default claim lease (TASK_CLAIM_TIMEOUT).
	ClaimTimeout time.Duration
	// Retention keeps completed and cancelled tasks; DeadRetention dead ones.
	Retention, DeadRetention time.Duration
	// ReapInterval is how often expired claims are taken back; ReapTimeout
	// bounds one run.
	ReapInterval, ReapTimeout time.Duration
	// ReconcileInterval is how often claim holders are checked against the
	// coordinator, for session failures the event stream missed;
	// ReconcileTimeout bounds one run and LookupTimeout one holder's lookup.
	ReconcileInterval, ReconcileTimeout, LookupTimeout time.Duration
	// PollInterval bounds how long a waiting claimer trusts notifications alone.
	PollInterval time.Duration
	// PruneInterval is how often finished tasks past retention are deleted;
	// PruneTimeout bounds one run.
	PruneInterval, PruneTimeout time.Duration
}

// Notifier wakes waiting claimers.
type Notifier interface {
	// Wait returns a channel closed when tasks may have become claimable.
	Wait() <-chan struct{}
	// Wake wakes every waiter.
	Wake()
}

// Stores are the repositories of the queue's three aggregates.
type Stores struct {
	Tasks      task.Repository
	Lessons    task.LessonRepository
	Affinities task.AffinityRepository
}

// Queue runs the use cases.
type Queue struct {
	cfg        Config
	tasks      task.Repository
	lessons    task.LessonRepository
	affinities task.AffinityRepository
	sessions   task.Sessions
	notifier   Notifier
	metrics    *Metrics
	log        *zap.Logger
	now        func() time.Time
}

// New builds the queue.
func New(cfg Config, stores Stores, sessions task.Sessions, notifier Notifier, metrics *Metrics, log *zap.Logger) *Queue {
	return &Queue{
		cfg:        cfg,
		tasks:      stores.Tasks,
		lessons:    stores.Lessons,
		affinities: stores.Affinities,
		sessions:   sessions,
		notifier:   notifier,
		metrics:    metrics,
		log:        log,
		now:        time.Now,
	}
}
