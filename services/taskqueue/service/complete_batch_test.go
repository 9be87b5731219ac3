package service_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestCompleteTasksSettlesEachClaimOnItsOwn completes a batch in which one
// claim went stale: the others complete (and count in their lesson), the
// stale one answers FAILED_PRECONDITION, and a malformed batch changes
// nothing and names the bad claim.
func TestCompleteTasksSettlesEachClaimOnItsOwn(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, 30*time.Second)
	l := e.lesson(ctx, "web", "batch", 0)
	for i := 0; i < 4; i++ {
		e.enqueue(ctx, newTaskReq(fmt.Sprintf("batch-%d", i), "t", 0, l.GetLessonId(), i))
	}
	a := e.register(ctx, "batcher", agentOpts{maxTasks: 4})
	claims := e.mustClaim(ctx, a, 4)
	// The second claim goes stale: cancelled from under its holder.
	if _, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: claims[1].GetTask().GetTaskId()}); err != nil {
		t.Fatal(err)
	}

	bad := &taskqueuev1.CompleteTasksRequest{SessionId: a.id, SessionToken: a.token}
	for _, c := range claims {
		bad.Claims = append(bad.Claims, &taskqueuev1.CompletedClaim{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken()})
	}
	bad.Claims[2].ClaimToken = "not-a-token"
	_, err := e.tasks.CompleteTasks(ctx, bad)
	wantStatus(t, err, codes.InvalidArgument, "claims[2].claim_token")
	if got := e.getTask(ctx, claims[0].GetTask().GetTaskId()).GetState(); got != taskqueuev1.TaskState_TASK_STATE_CLAIMED {
		t.Fatalf("a rejected batch settled a claim: %v", got)
	}

	bad.Claims[2].ClaimToken = claims[2].GetClaimToken()
	resp, err := e.tasks.CompleteTasks(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		want := codes.OK
		if i == 1 {
			want = codes.FailedPrecondition
		}
		if codes.Code(r.GetCode()) != want {
			t.Fatalf("result %d = %v (%s), want %v", i, codes.Code(r.GetCode()), r.GetMessage(), want)
		}
		if want == codes.OK && r.GetTask().GetState() != taskqueuev1.TaskState_TASK_STATE_COMPLETED {
			t.Fatalf("result %d task = %+v", i, r.GetTask())
		}
	}
	// Total 3 (one cancelled), all 3 completed.
	e.wantLesson(ctx, l.GetLessonId(), 3, 3, 0)
	// Settling again is refused claim by claim.
	again, err := e.tasks.CompleteTasks(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again.GetResults() {
		if codes.Code(r.GetCode()) != codes.FailedPrecondition {
			t.Fatalf("second completion of claim %d = %v", i, codes.Code(r.GetCode()))
		}
	}
}
