package service_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// claimRecord is one claim as its holder saw it. held is a sub-interval of
// the time the server considered the claim held: it starts when the claim
// reached the holder (after the server committed it) and ends when the
// holder sent its settlement (before the server committed that). So two
// records of one task whose held intervals overlap prove that two sessions
// held the task at once; no clock reading on the client can fake that.
type claimRecord struct {
	taskID    string
	session   int
	token     string
	attempt   int32
	claimedAt time.Time
	settledAt time.Time
	completed bool // CompleteTask succeeded for this claim
	failed    bool // FailTask succeeded for this claim
}

// claimAudit collects every claim of a run.
type claimAudit struct {
	mu      sync.Mutex
	records []*claimRecord
	errs    []error
	// onError, when set, runs at the first error (to end the run early).
	onError func()
}

func (a *claimAudit) add(r *claimRecord) {
	a.mu.Lock()
	a.records = append(a.records, r)
	a.mu.Unlock()
}

func (a *claimAudit) errorf(format string, args ...any) {
	a.mu.Lock()
	a.errs = append(a.errs, fmt.Errorf(format, args...))
	first := len(a.errs) == 1
	a.mu.Unlock()
	if first && a.onError != nil {
		a.onError()
	}
}

// failIfErrors reports the workers' errors.
func (a *claimAudit) failIfErrors(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) > 0 {
		t.Fatalf("%d worker errors:\n%v", len(a.errs), joinErrs(a.errs, 20))
	}
}

// check verifies the audit: per task, claim intervals never overlap,
// attempts count up from one with the claim token naming each, and exactly
// one completion succeeded, on the last claim; per session, no more claims
// were held at once than its capacity. With unseenAttempts, attempts need
// only increase: a claim whose answer was lost (a server stopping as it
// answered) used an attempt no client saw.
func (a *claimAudit) check(t *testing.T, wantTasks int, capacity int, unseenAttempts bool) map[string][]*claimRecord {
	t.Helper()
	a.failIfErrors(t)
	a.mu.Lock()
	defer a.mu.Unlock()
	byTask := map[string][]*claimRecord{}
	bySession := map[int][]*claimRecord{}
	for _, r := range a.records {
		byTask[r.taskID] = append(byTask[r.taskID], r)
		bySession[r.session] = append(bySession[r.session], r)
	}
	if len(byTask) != wantTasks {
		t.Fatalf("claims covered %d tasks, want %d", len(byTask), wantTasks)
	}
	var problems []error
	for id, rs := range byTask {
		sort.Slice(rs, func(i, j int) bool { return rs[i].attempt < rs[j].attempt })
		completions := 0
		for i, r := range rs {
			ordered := r.attempt == int32(i+1)
			if unseenAttempts {
				ordered = r.attempt >= int32(i+1) && (i == 0 || r.attempt > rs[i-1].attempt)
			}
			if !ordered || r.token != fmt.Sprintf("%s.%d", id, r.attempt) {
				problems = append(problems, fmt.Errorf("task %s: claim %d has attempt %d, token %q", id, i, r.attempt, r.token))
			}
			if r.settledAt.IsZero() {
				problems = append(problems, fmt.Errorf("task %s: attempt %d never settled", id, r.attempt))
			}
			if i > 0 && r.claimedAt.Before(rs[i-1].settledAt) {
				problems = append(problems, fmt.Errorf("task %s: attempt %d (session %d) claimed at %s while attempt %d (session %d) held it until %s",
					id, r.attempt, r.session, r.claimedAt.Format(time.StampMicro), rs[i-1].attempt, rs[i-1].session, rs[i-1].settledAt.Format(time.StampMicro)))
			}
			if r.completed {
				completions++
				if i != len(rs)-1 {
					problems = append(problems, fmt.Errorf("task %s: claimed again after its completion", id))
				}
			}
		}
		if completions != 1 {
			problems = append(problems, fmt.Errorf("task %s: %d successful completions", id, completions))
		}
	}
	for s, rs := range bySession {
		if peak := peakOverlap(rs); peak > capacity {
			problems = append(problems, fmt.Errorf("session %d held %d claims at once, capacity %d", s, peak, capacity))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d audit violations:\n%v", len(problems), joinErrs(problems, 20))
	}
	return byTask
}

// peakOverlap is the most held intervals open at one moment.
func peakOverlap(rs []*claimRecord) int {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := make([]edge, 0, 2*len(rs))
	for _, r := range rs {
		edges = append(edges, edge{r.claimedAt, 1}, edge{r.settledAt, -1})
	}
	// Ends sort before starts at the same instant: touching is not overlapping.
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta
	})
	open, peak := 0, 0
	for _, e := range edges {
		open += e.delta
		peak = max(peak, open)
	}
	return peak
}

// TestConcurrentClaimersCompleteEveryTaskExactlyOnce runs 50 sessions
// claiming batches of up to 20 from 20,000 tasks in four lessons; even
// sessions complete each task with CompleteTask, odd ones each claimed batch
// with CompleteTasks. Every 50th task fails its first attempt (retryable)
// and comes back for another session; some are completed twice on purpose. The audit of every
// claim, not a counter, shows that no task was held by two sessions at once,
// that each was completed exactly once, and the database agrees.
func TestConcurrentClaimersCompleteEveryTaskExactlyOnce(t *testing.T) {
	const (
		sessions = 50
		capacity = 20
		total    = 20000
		batch    = 500
	)
	// A lease far longer than the run: no session may fail mid-test, so any
	// lost claim is a queue bug, not a liveness verdict.
	e := startLoadEnv(t, coordtest.Options{LeaseTimeout: time.Minute, HeartbeatInterval: time.Second}, queuetest.Options{})
	ctx := testCtx(t, 3*time.Minute)

	lessons := make([]string, 4)
	for i := range lessons {
		lessons[i] = e.lesson(ctx, "load", fmt.Sprintf("lesson-%d", i), int32(i%2)).GetLessonId()
	}
	start := time.Now()
	var enqWG sync.WaitGroup
	enqErrs := make(chan error, total/batch)
	for b := 0; b < total/batch; b++ {
		enqWG.Add(1)
		go func() {
			defer enqWG.Done()
			req := &taskqueuev1.EnqueueTasksRequest{}
			for i := b * batch; i < (b+1)*batch; i++ {
				// No payload: the task's number is in its key, which spares
				// the run converting 20,000 JSON payloads back and forth.
				req.Tasks = append(req.Tasks, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: keyOf("load", i), TaskType: "load", Priority: int32(i % 11), LessonId: lessons[i%len(lessons)]})
			}
			resp, err := e.tasks.EnqueueTasks(ctx, req)
			if err == nil {
				for _, r := range resp.GetResults() {
					if r.GetDuplicate() {
						err = fmt.Errorf("fresh key %s reported duplicate", r.GetTask().GetIdempotencyKey())
						break
					}
				}
			}
			enqErrs <- err
		}()
		if b%4 == 3 {
			enqWG.Wait() // four batches in flight at a time
		}
	}
	enqWG.Wait()
	close(enqErrs)
	for err := range enqErrs {
		if err != nil {
			t.Fatalf("enqueue: %v", err)
		}
	}
	t.Logf("enqueued %d tasks in %s", total, time.Since(start).Round(time.Millisecond))

	agents := make([]*agent, sessions)
	for i := range agents {
		agents[i] = e.register(ctx, fmt.Sprintf("claimer-%02d", i), agentOpts{maxTasks: capacity, beat: time.Second})
	}

	var done atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	audit := &claimAudit{onError: stop}
	start = time.Now()
	var wg sync.WaitGroup
	for s, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				claims, err := e.claim(runCtx, a, capacity, time.Second)
				if err != nil {
					if runCtx.Err() == nil {
						audit.errorf("session %d: claim: %v", s, err)
						stop()
					}
					return
				}
				got := time.Now()
				var batch []*taskqueuev1.Claim
				var batchRecords []*claimRecord
				for _, c := range claims {
					r := &claimRecord{taskID: c.GetTask().GetTaskId(), session: s, token: c.GetClaimToken(), attempt: c.GetTask().GetAttempt(), claimedAt: got}
					audit.add(r)
					n, err := strconv.Atoi(strings.TrimPrefix(c.GetTask().GetIdempotencyKey(), "load-"))
					if err != nil {
						audit.errorf("claimed a task with key %q", c.GetTask().GetIdempotencyKey())
						continue
					}
					if n%50 == 0 && r.attempt == 1 {
						r.settledAt = time.Now()
						resp, err := e.fail(ctx, a, c, true)
						if err != nil || !resp.GetWillRetry() {
							audit.errorf("task %d: retryable failure of attempt 1: %v, %v", n, resp, err)
							continue
						}
						r.failed = true
						// The failed claim is stale at once.
						if _, err := e.complete(ctx, a, c); statusCode(err) != codes.FailedPrecondition {
							audit.errorf("task %d: completing a failed attempt: got %v, want FAILED_PRECONDITION", n, err)
						}
						continue
					}
					if s%2 == 1 {
						// Odd sessions settle their claims in one batch.
						batch, batchRecords = append(batch, c), append(batchRecords, r)
						continue
					}
					r.settledAt = time.Now()
					if _, err := e.complete(ctx, a, c); err != nil {
						audit.errorf("task %d attempt %d: complete: %v", n, r.attempt, err)
						continue
					}
					r.completed = true
					if n%97 == 0 {
						if _, err := e.complete(ctx, a, c); statusCode(err) != codes.FailedPrecondition {
							audit.errorf("task %d: completing twice: got %v, want FAILED_PRECONDITION", n, err)
						}
					}
					if done.Add(1) == total {
						stop()
					}
				}
				if len(batch) == 0 {
					continue
				}
				for _, r := range batchRecords {
					r.settledAt = time.Now()
				}
				results, err := completeBatch(ctx, e, a, batch)
				if err != nil {
					audit.errorf("session %d: complete %d claims: %v", s, len(batch), err)
					continue
				}
				for i, res := range results {
					if code := codes.Code(res.GetCode()); code != codes.OK {
						audit.errorf("task %s attempt %d: batch complete: %s %s", batch[i].GetTask().GetTaskId(), batchRecords[i].attempt, code, res.GetMessage())
						continue
					}
					batchRecords[i].completed = true
					if done.Add(1) == total {
						stop()
					}
				}
				// The same batch again: every claim is stale now.
				if batchRecords[0].attempt == 1 && len(batch)%3 == 0 {
					again, err := completeBatch(ctx, e, a, batch)
					for i, res := range again {
						if codes.Code(res.GetCode()) != codes.FailedPrecondition {
							audit.errorf("task %s: completing twice in a batch: got %s", batch[i].GetTask().GetTaskId(), codes.Code(res.GetCode()))
						}
					}
					if err != nil {
						audit.errorf("session %d: repeat a batch: %v", s, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	audit.failIfErrors(t)
	if ctx.Err() != nil {
		t.Fatalf("only %d of %d tasks completed before the deadline", done.Load(), total)
	}
	var deadlocks int64
	if err := e.db.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&deadlocks); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sessions completed %d tasks (%d claims) in %s (%.0f tasks/s); %d deadlocks in the database",
		sessions, done.Load(), len(audit.records), elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), deadlocks)
	// Nothing in this load may deadlock, even where the queue retries one.
	// (The statistics may lag a deadlock by some seconds; one they show is real.)
	if deadlocks != 0 {
		t.Errorf("%d deadlocks in the database", deadlocks)
	}

	byTask := audit.check(t, total, capacity, false)

	// The database agrees: every task completed, its attempt count the
	// number of claims the audit saw, nothing held.
	rows, err := e.db.Query(ctx, `SELECT task_id::text, state, attempt, claim_expires_at IS NULL FROM taskqueue.tasks`)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var id, state string
		var attempt int32
		var released bool
		if err := rows.Scan(&id, &state, &attempt, &released); err != nil {
			t.Fatal(err)
		}
		seen++
		if state != "completed" || !released || int(attempt) != len(byTask[id]) {
			t.Errorf("task %s: state %s, attempt %d, released %v; the audit saw %d claims", id, state, attempt, released, len(byTask[id]))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != total {
		t.Fatalf("database holds %d tasks, want %d", seen, total)
	}
	for _, id := range lessons {
		e.wantLesson(ctx, id, total/int64(len(lessons)), total/int64(len(lessons)), 0)
	}
}

// completeBatch settles claims of one session with CompleteTasks.
func completeBatch(ctx context.Context, e *queueEnv, a *agent, claims []*taskqueuev1.Claim) ([]*taskqueuev1.CompletedClaimResult, error) {
	req := &taskqueuev1.CompleteTasksRequest{SessionId: a.id, SessionToken: a.token}
	for _, c := range claims {
		req.Claims = append(req.Claims, &taskqueuev1.CompletedClaim{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken()})
	}
	resp, err := e.tasks.CompleteTasks(ctx, req)
	if err == nil && len(resp.GetResults()) != len(claims) {
		err = fmt.Errorf("%d results for %d claims", len(resp.GetResults()), len(claims))
	}
	return resp.GetResults(), err
}
