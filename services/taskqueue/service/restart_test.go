package service_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestQueueRestartMidRunLosesNothingAndHoldsNothing stops the queue while
// eight sessions claim and complete, keeps it down while a ninth session
// that holds claims dies, and starts it again on the same address. The
// claimers ride out the outage by retrying; the dead session's claims come
// back (the reconciler finds them: the session watch only knows live
// sessions after a restart) and are completed by the others; its own late
// completion is refused. In the end the audit shows every task completed
// exactly once and never held twice, and nothing is held.
func TestQueueRestartMidRunLosesNothingAndHoldsNothing(t *testing.T) {
	const (
		claimers = 8
		capacity = 10
		total    = 2000
	)
	// A short claim lease: a claim whose answer the stopping server never
	// delivered comes back through the reaper within seconds.
	e := startLoadEnv(t, coordtest.Options{LeaseTimeout: 2 * time.Second, HeartbeatInterval: 250 * time.Millisecond},
		queuetest.Options{ClaimTimeout: 5 * time.Second, ReapInterval: 100 * time.Millisecond})
	ctx := testCtx(t, 2*time.Minute)
	lesson := e.lesson(ctx, "restart", "restart", 0).GetLessonId()
	// The doomed session's tasks come first and have a long lease, so that
	// only the session's failure can take them back.
	const doomedTasks = 5
	for b := 0; b < total; b += 500 {
		req := &taskqueuev1.EnqueueTasksRequest{}
		for i := b; i < b+500; i++ {
			tr := newTaskReq(keyOf("r", i), "work", int32(i%3), lesson, i)
			if i < doomedTasks {
				tr.Priority, tr.ClaimTimeout = 10, durationpb.New(time.Hour)
			}
			req.Tasks = append(req.Tasks, tr)
		}
		if _, err := e.tasks.EnqueueTasks(ctx, req); err != nil {
			t.Fatal(err)
		}
	}

	// The doomed session takes its claims before the claimers start.
	doomed := e.register(ctx, "doomed", agentOpts{maxTasks: doomedTasks, beat: 250 * time.Millisecond})
	doomedClaims := e.mustClaim(ctx, doomed, doomedTasks)
	audit := &claimAudit{}
	claimedAt := time.Now()
	doomedRecords := make([]*claimRecord, len(doomedClaims))
	for i, c := range doomedClaims {
		doomedRecords[i] = &claimRecord{taskID: c.GetTask().GetTaskId(), session: -1, token: c.GetClaimToken(), attempt: c.GetTask().GetAttempt(), claimedAt: claimedAt}
		audit.add(doomedRecords[i])
	}

	agents := make([]*agent, claimers)
	for i := range agents {
		agents[i] = e.register(ctx, fmt.Sprintf("claimer-%d", i), agentOpts{maxTasks: capacity, beat: 250 * time.Millisecond})
	}
	var done, outageErrors atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	audit.onError = stop
	var wg sync.WaitGroup
	for s, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// transient says whether an error is the outage's (the queue
			// down or draining), to be retried, rather than a failure.
			transient := func(err error) bool {
				switch statusCode(err) {
				case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
					outageErrors.Add(1)
					return true
				}
				return false
			}
			for runCtx.Err() == nil {
				callCtx, cancel := context.WithTimeout(runCtx, 5*time.Second)
				claims, err := e.claim(callCtx, a, capacity, 500*time.Millisecond)
				cancel()
				if err != nil {
					if runCtx.Err() != nil {
						return
					}
					if !transient(err) {
						audit.errorf("session %d: claim: %v", s, err)
						stop()
						return
					}
					// Ride out the outage: retry at a modest pace.
					select {
					case <-runCtx.Done():
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				got := time.Now()
				for _, c := range claims {
					r := &claimRecord{taskID: c.GetTask().GetTaskId(), session: s, token: c.GetClaimToken(), attempt: c.GetTask().GetAttempt(), claimedAt: got}
					audit.add(r)
					retried := false
					for {
						r.settledAt = time.Now()
						_, err := e.complete(runCtx, a, c)
						if err == nil || retried && statusCode(err) == codes.FailedPrecondition && completedBy(runCtx, e, c, a) {
							// (An earlier try may have completed the task and
							// lost only its answer to the outage: the task,
							// completed at this attempt by this session, says so.)
							r.completed = true
							if done.Add(1) == total {
								stop()
							}
							break
						}
						if runCtx.Err() != nil {
							return
						}
						if statusCode(err) == codes.FailedPrecondition {
							// The claim was taken back meanwhile (its lease
							// ran out during the outage): stale, and that is
							// the fencing working, not a loss. When it was
							// taken back is unknown, so the audit may only
							// count it held when it arrived.
							r.settledAt = r.claimedAt
							break
						}
						if !transient(err) {
							audit.errorf("session %d: complete: %v", s, err)
							stop()
							return
						}
						retried = true
						select {
						case <-runCtx.Done():
							return
						case <-time.After(50 * time.Millisecond):
						}
					}
				}
			}
		}()
	}

	eventually(t, time.Minute, "a third of the tasks completed", func() (bool, error) { return done.Load() >= total/3, nil })
	// The doomed claims are certainly held until the queue stops: the
	// session fails only afterwards, and nothing takes a claim back while
	// the queue is down.
	for _, r := range doomedRecords {
		r.settledAt = time.Now()
	}
	e.q.Stop()
	stoppedAt := done.Load()
	doomed.hb.Stop()
	eventually(t, 10*time.Second, "doomed session failed while the queue was down", func() (bool, error) {
		s, err := e.coordc.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: doomed.id})
		return s.GetSession().GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_FAILED, err
	})
	e.q.Restart()
	restartedAt := time.Now()
	t.Logf("queue stopped at %d completions, restarted", stoppedAt)

	// The dead session's late completion is refused, before and after its
	// claims come back.
	for _, c := range doomedClaims {
		var err error
		// The client may still be backing off from the outage.
		eventually(t, 10*time.Second, "queue answers after the restart", func() (bool, error) {
			_, err = e.complete(ctx, doomed, c)
			return statusCode(err) != codes.Unavailable, err
		})
		if statusCode(err) != codes.FailedPrecondition {
			t.Errorf("dead session completes after the restart: got %v, want FAILED_PRECONDITION", err)
		}
	}
	eventually(t, 15*time.Second, "the dead session's claims taken back", func() (bool, error) {
		var held int
		err := e.db.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE state = 'claimed' AND claimed_by_session_id = $1`, doomed.id).Scan(&held)
		return held == 0, err
	})
	t.Logf("dead session's claims back %s after the restart", time.Since(restartedAt).Round(time.Millisecond))

	wg.Wait()
	audit.failIfErrors(t)
	if ctx.Err() != nil {
		t.Fatalf("only %d of %d tasks completed before the deadline", done.Load(), total)
	}
	t.Logf("%d tasks completed; %d calls met the outage and were retried", done.Load(), outageErrors.Load())
	if done.Load() <= stoppedAt {
		t.Fatal("no task completed after the restart")
	}
	audit.check(t, total, capacity, true)

	var notDone, held int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state <> 'completed'), count(*) FILTER (WHERE claim_expires_at IS NOT NULL) FROM taskqueue.tasks`).Scan(&notDone, &held); err != nil {
		t.Fatal(err)
	}
	if notDone != 0 || held != 0 {
		t.Fatalf("%d tasks not completed, %d still held", notDone, held)
	}
	e.wantLesson(ctx, lesson, total, total, 0)
}

// completedBy says whether a claim's task is completed by that claim: the
// same attempt, and the session that held it.
func completedBy(ctx context.Context, e *queueEnv, c *taskqueuev1.Claim, a *agent) bool {
	resp, err := e.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: c.GetTask().GetTaskId()})
	task := resp.GetTask()
	return err == nil && task.GetState() == taskqueuev1.TaskState_TASK_STATE_COMPLETED &&
		task.GetAttempt() == c.GetTask().GetAttempt() && task.GetClaimedBySessionId() == a.id
}
