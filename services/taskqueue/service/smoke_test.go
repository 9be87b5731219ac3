package service_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gaia-platform/gaia/internal/pgtest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestEnqueueClaimComplete is the queue's happy path end to end: a lesson,
// a task in it, a duplicate enqueue, a claim by a registered session, and a
// completion that moves the lesson to 100 %.
func TestEnqueueClaimComplete(t *testing.T) {
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	q := queuetest.Start(t, pgtest.NewDatabase(t), coord.Addrs(), queuetest.Options{Quiet: true, Keys: coord.Keys})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	reg, err := coord.Client().Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "w", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CODEX, MaxConcurrentTasks: 1})
	if err != nil {
		t.Fatal(err)
	}
	lesson, err := q.Lessons().CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "web", Name: "fractions"})
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := structpb.NewStruct(map[string]any{"file": "a.go"})
	req := &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "k1", TaskType: "review", Payload: payload, LessonId: lesson.GetLesson().GetLessonId()}
	first, err := q.Tasks().EnqueueTask(ctx, req)
	if err != nil || first.GetDuplicate() {
		t.Fatalf("enqueue: %+v, %v", first, err)
	}
	again, err := q.Tasks().EnqueueTask(ctx, req)
	if err != nil || !again.GetDuplicate() || again.GetTask().GetTaskId() != first.GetTask().GetTaskId() {
		t.Fatalf("duplicate enqueue: %+v, %v", again, err)
	}
	claims, err := q.Tasks().ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: reg.GetSession().GetSessionId(), SessionToken: reg.GetSessionToken(), MaxTasks: 5, Wait: durationpb.New(5 * time.Second)})
	if err != nil || len(claims.GetClaims()) != 1 {
		t.Fatalf("claim: %+v, %v", claims, err)
	}
	c := claims.GetClaims()[0]
	done, err := q.Tasks().CompleteTask(ctx, &taskqueuev1.CompleteTaskRequest{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken(), SessionId: reg.GetSession().GetSessionId(), SessionToken: reg.GetSessionToken()})
	if err != nil || done.GetTask().GetState() != taskqueuev1.TaskState_TASK_STATE_COMPLETED {
		t.Fatalf("complete: %+v, %v", done, err)
	}
	l, err := q.Lessons().GetLesson(ctx, &taskqueuev1.GetLessonRequest{LessonId: lesson.GetLesson().GetLessonId()})
	if err != nil || l.GetLesson().GetProgressPercent() != 100 || l.GetLesson().GetTasksTotal() != 1 {
		t.Fatalf("lesson after completion: %+v, %v", l.GetLesson(), err)
	}
}
