// Package app holds the task queue's use cases: enqueue, claim (long-poll),
// settle, cancel and retry tasks; lessons and affinities; and the background
// work that takes back claims whose holder is gone. It talks to PostgreSQL
// only through task.Repository and to the coordinator only through Sessions.
package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
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
	// ReapInterval is how often expired claims are taken back.
	ReapInterval time.Duration
	// ReconcileInterval is how often claim holders are checked against the
	// coordinator, for session failures the event stream missed.
	ReconcileInterval time.Duration
	// PollInterval bounds how long a waiting claimer trusts notifications alone.
	PollInterval time.Duration
	// PruneInterval is how often finished tasks past retention are deleted.
	PruneInterval time.Duration
}

// Notifier wakes waiting claimers.
type Notifier interface {
	// Wait returns a channel closed when tasks may have become claimable.
	Wait() <-chan struct{}
	// Wake wakes every waiter.
	Wake()
}

// Queue runs the use cases.
type Queue struct {
	cfg      Config
	repo     task.Repository
	sessions Sessions
	notifier Notifier
	metrics  *Metrics
	log      *zap.Logger
	now      func() time.Time
}

// New builds the queue. sessions may be set later with SetSessions, since
// the sessions adapter calls back into the queue.
func New(cfg Config, repo task.Repository, notifier Notifier, metrics *Metrics, log *zap.Logger) *Queue {
	return &Queue{cfg: cfg, repo: repo, notifier: notifier, metrics: metrics, log: log, now: time.Now}
}

// SetSessions sets the session view.
func (q *Queue) SetSessions(s Sessions) { q.sessions = s }

// Enqueue adds tasks, filling in defaults.
func (q *Queue) Enqueue(ctx context.Context, tasks []task.NewTask) ([]task.Enqueued, error) {
	for i := range tasks {
		t := &tasks[i]
		id, err := newUUID()
		if err != nil {
			return nil, err
		}
		t.ID = id
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
	out, err := q.repo.Enqueue(ctx, tasks)
	if err != nil {
		return nil, err
	}
	fresh := 0
	for _, e := range out {
		if !e.Duplicate {
			fresh++
			q.metrics.enqueued.WithLabelValues(e.Task.Type).Inc()
		}
	}
	if fresh > 0 {
		q.notifier.Wake()
	}
	return out, nil
}

// ClaimInput asks for work.
type ClaimInput struct {
	SessionID string
	Token     string
	Types     []string
	Max       int
	Wait      time.Duration
}

// Claim claims up to Max ready tasks for an available session, waiting up
// to Wait for work when there is none.
func (q *Queue) Claim(ctx context.Context, in ClaimInput) ([]task.Claim, error) {
	start := q.now()
	sess, err := q.availableSession(ctx, in.SessionID, in.Token, start)
	if err != nil {
		return nil, err
	}
	lessons, err := q.preferredLessons(ctx, sess.Name, start)
	if err != nil {
		return nil, err
	}
	req := task.ClaimRequest{
		SessionID:     sess.ID,
		SessionName:   sess.Name,
		Types:         in.Types,
		Limit:         in.Max,
		MaxConcurrent: max(sess.MaxConcurrentTasks, 1),
		Lessons:       lessons,
	}
	deadline := time.NewTimer(in.Wait)
	defer deadline.Stop()
	for {
		woken := q.notifier.Wait()
		claims, err := q.repo.Claim(ctx, req)
		if err != nil {
			return nil, err
		}
		if len(claims) > 0 || in.Wait <= 0 {
			q.metrics.claimLatency.Observe(q.now().Sub(start).Seconds())
			for _, c := range claims {
				q.metrics.claimed.WithLabelValues(c.Task.Type).Inc()
			}
			return claims, nil
		}
		poll := time.NewTimer(q.cfg.PollInterval)
		select {
		case <-ctx.Done():
			poll.Stop()
			return nil, ctx.Err()
		case <-deadline.C:
			poll.Stop()
			return nil, nil
		case <-woken:
		case <-poll.C:
		}
		poll.Stop()
		// The session may have failed, or left its time windows, while it
		// waited: a task must not go to a session that can no longer run it.
		if _, err := q.availableSession(ctx, in.SessionID, in.Token, q.now()); err != nil {
			return nil, err
		}
	}
}

// availableSession authenticates a session and checks that it may claim now.
func (q *Queue) availableSession(ctx context.Context, id, token string, now time.Time) (Session, error) {
	sess, err := q.sessions.Authenticate(ctx, id, token)
	if err != nil {
		return Session{}, err
	}
	return sess, availability(sess, now)
}

// preferredLessons are the lessons the session has affinity with now, best
// score first.
func (q *Queue) preferredLessons(ctx context.Context, sessionName string, now time.Time) ([]string, error) {
	affs, err := q.repo.ListAffinities(ctx, task.AffinityFilter{SessionName: sessionName, Limit: 1000})
	if err != nil {
		return nil, err
	}
	var active []task.Affinity
	for _, a := range affs {
		if a.Window == nil || a.Window.Contains(now) {
			active = append(active, a)
		}
	}
	sort.SliceStable(active, func(i, j int) bool { return active[i].Score > active[j].Score })
	out := make([]string, len(active))
	for i, a := range active {
		out[i] = a.LessonID
	}
	return out, nil
}

// authorize checks that the caller is the session it claims to be, and that
// the session has not ended: a failed or deregistered session has lost its
// claims, even while the queue has yet to take them back.
func (q *Queue) authorize(ctx context.Context, sessionID, token string) error {
	s, err := q.sessions.Authenticate(ctx, sessionID, token)
	if err != nil {
		return err
	}
	if s.Status == SessionFailed || s.Status == SessionDeregistered {
		return task.ErrSessionFailed
	}
	return nil
}

// ExtendClaim pushes a held claim's lease; zero d uses the task's claim timeout.
func (q *Queue) ExtendClaim(ctx context.Context, tok task.ClaimToken, sessionID, sessionToken string, d time.Duration) (time.Time, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return time.Time{}, err
	}
	if d == 0 {
		t, err := q.repo.Get(ctx, tok.TaskID)
		if err != nil {
			return time.Time{}, err
		}
		d = t.ClaimTimeout
	}
	return q.repo.Extend(ctx, tok, sessionID, d)
}

// Complete settles a held claim as completed.
func (q *Queue) Complete(ctx context.Context, tok task.ClaimToken, sessionID, sessionToken string, result json.RawMessage) (task.Task, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return task.Task{}, err
	}
	t, err := q.repo.Complete(ctx, tok, sessionID, result)
	if err == nil {
		q.metrics.completed.WithLabelValues(t.Type).Inc()
	}
	return t, err
}

// CompleteMany settles a batch of one session's claims as completed in one
// transaction; each claim gets its task or its own error.
func (q *Queue) CompleteMany(ctx context.Context, sessionID, sessionToken string, claims []task.Completion) ([]task.Task, []error, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return nil, nil, err
	}
	tasks, errs, err := q.repo.CompleteMany(ctx, sessionID, claims)
	if err != nil {
		return nil, nil, err
	}
	for i, t := range tasks {
		if errs[i] == nil {
			q.metrics.completed.WithLabelValues(t.Type).Inc()
		}
	}
	return tasks, errs, nil
}

// Fail settles a held claim as failed; a retryable failure comes back after
// an exponential backoff with jitter while attempts remain.
func (q *Queue) Fail(ctx context.Context, tok task.ClaimToken, sessionID, sessionToken, message string, retryable bool) (task.Task, bool, error) {
	if err := q.authorize(ctx, sessionID, sessionToken); err != nil {
		return task.Task{}, false, err
	}
	t, retry, err := q.repo.Fail(ctx, tok, sessionID, message, retryable, task.Backoff(tok.Attempt))
	if err != nil {
		return t, retry, err
	}
	if retry {
		q.metrics.retried.WithLabelValues(t.Type).Inc()
	} else {
		q.metrics.dead.WithLabelValues(t.Type).Inc()
	}
	return t, retry, nil
}

// Cancel cancels a task that has not finished.
func (q *Queue) Cancel(ctx context.Context, id, reason string) (task.Task, error) {
	return q.repo.Cancel(ctx, id, reason)
}

// Retry revives a dead or cancelled task.
func (q *Queue) Retry(ctx context.Context, id string, reset bool, runAt time.Time) (task.Task, error) {
	t, err := q.repo.Retry(ctx, id, reset, runAt)
	if err == nil {
		q.notifier.Wake()
	}
	return t, err
}

// Get returns a task by id or, when id is empty, by idempotency key.
func (q *Queue) Get(ctx context.Context, id, key string) (task.Task, error) {
	if id != "" {
		return q.repo.Get(ctx, id)
	}
	return q.repo.GetByKey(ctx, key)
}

// List lists tasks.
func (q *Queue) List(ctx context.Context, f task.ListFilter) ([]task.Task, error) {
	return q.repo.List(ctx, f)
}

// SessionEnded takes back at once every claim of a session the coordinator
// failed or deregistered.
func (q *Queue) SessionEnded(ctx context.Context, sessionID, reason string) {
	rq, err := q.repo.RequeueSession(ctx, sessionID, "claim lost: "+reason)
	if err != nil {
		q.log.Error("requeue of a failed session's tasks failed", zap.String("session_id", sessionID), zap.Error(err))
		return
	}
	q.recordRequeues(rq, "session_ended")
	if len(rq) > 0 {
		q.log.Info("tasks of an ended session requeued", zap.String("session_id", sessionID), zap.Int("tasks", len(rq)), zap.String("reason", reason))
		q.notifier.Wake()
	}
}

func (q *Queue) recordRequeues(rq []task.Requeued, why string) {
	for _, r := range rq {
		if r.Dead {
			q.metrics.requeued.WithLabelValues(why, "dead").Inc()
		} else {
			q.metrics.requeued.WithLabelValues(why, "pending").Inc()
		}
	}
}

// Run does the background work until ctx ends: the reaper of expired
// claims, the reconciliation of claim holders with the coordinator, and
// pruning. Every replica may run it; each step is safe to run concurrently.
func (q *Queue) Run(ctx context.Context) {
	reap := time.NewTicker(q.cfg.ReapInterval)
	defer reap.Stop()
	reconcile := time.NewTicker(q.cfg.ReconcileInterval)
	defer reconcile.Stop()
	prune := time.NewTicker(q.cfg.PruneInterval)
	defer prune.Stop()
	// At start-up, at once: claims of sessions that ended while this replica
	// was down go back now, not a reconcile interval later.
	q.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-reap.C:
			q.reap(ctx)
		case <-reconcile.C:
			q.reconcile(ctx)
		case <-prune.C:
			q.prune(ctx)
		}
	}
}

func (q *Queue) reap(ctx context.Context) {
	for {
		rq, err := q.repo.RequeueExpired(ctx, 1000)
		if err != nil {
			if ctx.Err() == nil {
				q.log.Error("reaping expired claims failed", zap.Error(err))
			}
			return
		}
		q.recordRequeues(rq, "claim_expired")
		if len(rq) > 0 {
			q.log.Info("expired claims requeued", zap.Int("tasks", len(rq)))
			q.notifier.Wake()
		}
		if len(rq) < 1000 {
			return
		}
	}
}

func (q *Queue) reconcile(ctx context.Context) {
	ids, err := q.repo.ClaimingSessions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("listing claim holders failed", zap.Error(err))
		}
		return
	}
	for _, id := range ids {
		s, found, err := q.sessions.Lookup(ctx, id)
		if err != nil {
			q.log.Warn("checking a claim holder failed", zap.String("session_id", id), zap.Error(err))
			continue
		}
		if !found {
			q.SessionEnded(ctx, id, "session unknown to the coordinator")
		} else if s.Status == SessionFailed || s.Status == SessionDeregistered {
			q.SessionEnded(ctx, id, "session "+s.Name+" "+string(s.Status))
		}
	}
}

func (q *Queue) prune(ctx context.Context) {
	now := q.now()
	n, err := q.repo.Prune(ctx, now.Add(-q.cfg.Retention), now.Add(-q.cfg.DeadRetention))
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("pruning finished tasks failed", zap.Error(err))
		}
		return
	}
	if n > 0 {
		q.log.Info("finished tasks pruned", zap.Int64("tasks", n))
	}
}

// Depth counts tasks by state and type (for the metrics endpoint).
func (q *Queue) Depth(ctx context.Context) (map[task.State]map[string]int64, error) {
	return q.repo.Depth(ctx)
}

// Lessons.

// CreateLesson creates a lesson.
func (q *Queue) CreateLesson(ctx context.Context, l task.Lesson) (task.Lesson, error) {
	id, err := newUUID()
	if err != nil {
		return task.Lesson{}, err
	}
	l.ID = id
	if l.Metadata == nil {
		l.Metadata = json.RawMessage("{}")
	}
	return q.repo.CreateLesson(ctx, l)
}

// GetLesson returns a lesson with its progress.
func (q *Queue) GetLesson(ctx context.Context, id string) (task.Lesson, error) {
	return q.repo.GetLesson(ctx, id)
}

// ListLessons lists lessons.
func (q *Queue) ListLessons(ctx context.Context, f task.LessonFilter) ([]task.Lesson, error) {
	return q.repo.ListLessons(ctx, f)
}

// UpdateLesson changes a lesson.
func (q *Queue) UpdateLesson(ctx context.Context, id string, u task.LessonUpdate) (task.Lesson, error) {
	return q.repo.UpdateLesson(ctx, id, u)
}

// SetAffinity creates or replaces an affinity.
func (q *Queue) SetAffinity(ctx context.Context, a task.Affinity) (task.Affinity, error) {
	if _, err := q.repo.GetLesson(ctx, a.LessonID); err != nil {
		return task.Affinity{}, err
	}
	return q.repo.SetAffinity(ctx, a)
}

// ListAffinities lists affinities.
func (q *Queue) ListAffinities(ctx context.Context, f task.AffinityFilter) ([]task.Affinity, error) {
	return q.repo.ListAffinities(ctx, f)
}

// DeleteAffinity removes an affinity.
func (q *Queue) DeleteAffinity(ctx context.Context, sessionName, lessonID string) error {
	return q.repo.DeleteAffinity(ctx, sessionName, lessonID)
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
