package service_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// clockSlack allows for the database's clock reading (now() is taken at the
// start of its transaction) against the test's, on one machine.
const clockSlack = 50 * time.Millisecond

// TestRetryScheduleBackoffThenDeadThenRevived walks a task through its
// retries: each retryable failure puts it back to pending with run_at in the
// upper half of 1s·2^(attempt-1) from now; the last allowed attempt's failure
// makes it dead and the lesson counts it; RetryTask without a reset allows
// one more attempt, with a reset starts the count again; a non-retryable
// failure is dead at once.
func TestRetryScheduleBackoffThenDeadThenRevived(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	w := e.register(ctx, "retrier", agentOpts{maxTasks: 1})
	lesson := e.lesson(ctx, "retry", "retry", 0).GetLessonId()
	const maxAttempts = 4
	req := newTaskReq("flaky", "work", 0, lesson, 0)
	req.MaxAttempts = maxAttempts
	id := e.enqueue(ctx, req).GetTaskId()

	// failOnce claims the task (attempt want) and fails it retryably.
	failOnce := func(want int32) *taskqueuev1.FailTaskResponse {
		t.Helper()
		c := e.mustClaim(ctx, w, 1)[0]
		if c.GetTask().GetTaskId() != id || c.GetTask().GetAttempt() != want {
			t.Fatalf("claimed %s at attempt %d, want %s at %d", c.GetTask().GetTaskId(), c.GetTask().GetAttempt(), id, want)
		}
		resp, err := e.fail(ctx, w, c, true)
		if err != nil {
			t.Fatalf("fail attempt %d: %v", want, err)
		}
		return resp
	}

	for attempt := int32(1); attempt < maxAttempts; attempt++ {
		before := time.Now()
		resp := failOnce(attempt)
		after := time.Now()
		task := resp.GetTask()
		if !resp.GetWillRetry() || task.GetState() != taskqueuev1.TaskState_TASK_STATE_PENDING || task.GetAttempt() != attempt || task.GetLastError() != "boom" {
			t.Fatalf("after failing attempt %d: will_retry %v, %s at attempt %d, last_error %q", attempt, resp.GetWillRetry(), task.GetState(), task.GetAttempt(), task.GetLastError())
		}
		base := time.Second << (attempt - 1)
		runAt := task.GetRunAt().AsTime()
		lo, hi := before.Add(base/2-clockSlack), after.Add(base+clockSlack)
		if runAt.Before(lo) || runAt.After(hi) {
			t.Fatalf("attempt %d: run_at is now+%s, want within [now+%s, now+%s]", attempt, runAt.Sub(before), base/2, base)
		}
		t.Logf("attempt %d: retry in %s (window %s–%s)", attempt, runAt.Sub(before).Round(time.Millisecond), base/2, base)
		// Not claimable before run_at (checked where the backoff is long
		// enough, at least 2 s, that no stall of a loaded machine reaches it).
		if base/2 >= 2*time.Second {
			if claims, err := e.claim(ctx, w, 1, 0); err != nil || len(claims) != 0 {
				t.Fatalf("claimed during the backoff: %v, %v", claims, err)
			}
		}
		// The schedule is checked; skip the wait instead of sleeping it out.
		e.makeRunnable(ctx, id)
	}
	e.wantLesson(ctx, lesson, 1, 0, 0)

	resp := failOnce(maxAttempts)
	if resp.GetWillRetry() || resp.GetTask().GetState() != taskqueuev1.TaskState_TASK_STATE_DEAD || resp.GetTask().GetFinishedAt() == nil {
		t.Fatalf("last attempt's failure: will_retry %v, state %s", resp.GetWillRetry(), resp.GetTask().GetState())
	}
	e.wantLesson(ctx, lesson, 1, 0, 1)
	if claims, err := e.claim(ctx, w, 1, 0); err != nil || len(claims) != 0 {
		t.Fatalf("claimed a dead task: %v, %v", claims, err)
	}

	// Revived without a reset: the count stays, one more attempt is allowed.
	rt, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.GetTask(); got.GetState() != taskqueuev1.TaskState_TASK_STATE_PENDING || got.GetAttempt() != maxAttempts || got.GetMaxAttempts() != maxAttempts+1 || got.GetFinishedAt() != nil {
		t.Fatalf("retry without reset: %s attempt %d/%d", got.GetState(), got.GetAttempt(), got.GetMaxAttempts())
	}
	e.wantLesson(ctx, lesson, 1, 0, 0)
	resp = failOnce(maxAttempts + 1)
	if resp.GetWillRetry() || resp.GetTask().GetState() != taskqueuev1.TaskState_TASK_STATE_DEAD {
		t.Fatalf("the extra attempt's failure: will_retry %v, state %s", resp.GetWillRetry(), resp.GetTask().GetState())
	}
	e.wantLesson(ctx, lesson, 1, 0, 1)

	// Revived with a reset, later: pending from run_at, attempts from zero.
	runAt := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	rt, err = e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: id, ResetAttempts: true, RunAt: timestamppb.New(runAt)})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.GetTask(); got.GetAttempt() != 0 || got.GetMaxAttempts() != maxAttempts+1 || !got.GetRunAt().AsTime().Equal(runAt) {
		t.Fatalf("retry with reset: attempt %d/%d, run_at %s (want %s)", got.GetAttempt(), got.GetMaxAttempts(), got.GetRunAt().AsTime(), runAt)
	}
	if claims, err := e.claim(ctx, w, 1, 0); err != nil || len(claims) != 0 {
		t.Fatalf("claimed before the retry's run_at: %v, %v", claims, err)
	}
	e.makeRunnable(ctx, id)
	c := e.mustClaim(ctx, w, 1)[0]
	if c.GetTask().GetAttempt() != 1 {
		t.Fatalf("after a reset the next claim is attempt %d", c.GetTask().GetAttempt())
	}
	if _, err := e.complete(ctx, w, c); err != nil {
		t.Fatal(err)
	}
	e.wantLesson(ctx, lesson, 1, 1, 0)

	// A completed task cannot be retried.
	_, err = e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: id})
	wantStatus(t, err, codes.FailedPrecondition, "")

	// A non-retryable failure is dead at once, attempts left or not.
	req = newTaskReq("fatal", "work", 0, lesson, 1)
	req.MaxAttempts = maxAttempts
	fid := e.enqueue(ctx, req).GetTaskId()
	c = e.mustClaim(ctx, w, 1)[0]
	if c.GetTask().GetTaskId() != fid {
		t.Fatalf("claimed %s, want %s", c.GetTask().GetTaskId(), fid)
	}
	fr, err := e.fail(ctx, w, c, false)
	if err != nil || fr.GetWillRetry() || fr.GetTask().GetState() != taskqueuev1.TaskState_TASK_STATE_DEAD || fr.GetTask().GetAttempt() != 1 {
		t.Fatalf("non-retryable failure: %+v, %v", fr, err)
	}
	e.wantLesson(ctx, lesson, 2, 1, 1)
}

// TestRetryBackoffCountsReapedAttempts: a claim the reaper takes
// back is not a failure and comes back at once (no backoff), and a retryable
// failure after it backs off by the attempt number, counting the reaped
// attempt.
func TestRetryBackoffCountsReapedAttempts(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{ReapInterval: 50 * time.Millisecond})
	ctx := testCtx(t, time.Minute)
	w := e.register(ctx, "w", agentOpts{maxTasks: 1})
	req := newTaskReq("reaped-then-failed", "work", 0, "", 0)
	req.ClaimTimeout = durationpb.New(time.Second)
	id := e.enqueue(ctx, req).GetTaskId()
	e.mustClaim(ctx, w, 1)
	eventually(t, 10*time.Second, "claim reaped", func() (bool, error) {
		st, _ := e.dbTaskState(ctx, id)
		return st == "pending", nil
	})
	c := e.mustClaim(ctx, w, 1)[0]
	if c.GetTask().GetAttempt() != 2 {
		t.Fatalf("attempt %d after a reaped claim, want 2", c.GetTask().GetAttempt())
	}
	before := time.Now()
	resp, err := e.fail(ctx, w, c, true)
	if err != nil || !resp.GetWillRetry() {
		t.Fatalf("fail: %+v, %v", resp, err)
	}
	if d := resp.GetTask().GetRunAt().AsTime().Sub(before); d < time.Second-clockSlack || d > 2*time.Second+clockSlack+time.Since(before) {
		t.Fatalf("second attempt's backoff is %s, want 1s–2s", d)
	}
}
