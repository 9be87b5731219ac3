package service_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestNULCharactersAreRefusedNotInternal: "\u0000" in an idempotency key, a
// payload (however nested), a lesson's fields, a cancel reason, a failure
// message or a result reached PostgreSQL, whose text and jsonb types refuse
// it, and came back as INTERNAL. Each is INVALID_ARGUMENT naming the field
// now, and nothing was written.
func TestNULCharactersAreRefusedNotInternal(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	a := e.register(ctx, "nul", agentOpts{maxTasks: 5})
	lesson := e.lesson(ctx, "nul", "nul", 0).GetLessonId()
	e.enqueue(ctx, newTaskReq("held", "work", 0, "", 0))
	held := e.mustClaim(ctx, a, 1)[0]
	pending := e.enqueue(ctx, newTaskReq("pending", "work", 0, "", 0)).GetTaskId()
	before := e.tableDigest(ctx)

	nested := func(v any) *structpb.Struct {
		s, err := structpb.NewStruct(map[string]any{"a": map[string]any{"b": []any{"ok", v}}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withKey, _ := structpb.NewStruct(map[string]any{"a": map[string]any{"k\x00": 1}})
	enqueue := func(r *taskqueuev1.EnqueueTaskRequest) func() error {
		return func() error { _, err := e.tasks.EnqueueTask(ctx, r); return err }
	}
	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"idempotency key", "idempotency_key", enqueue(&taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "k\x00", TaskType: "work"})},
		{"nested payload string", "payload.a.b[1]", enqueue(&taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "k", TaskType: "work", Payload: nested("x\x00y")})},
		{"payload key", "payload.a", enqueue(&taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "k", TaskType: "work", Payload: withKey})},
		{"batch payload", "tasks[0].payload.a.b[1]", func() error {
			_, err := e.tasks.EnqueueTasks(ctx, &taskqueuev1.EnqueueTasksRequest{Tasks: []*taskqueuev1.EnqueueTaskRequest{{IdempotencyKey: "k", TaskType: "work", Payload: nested("\x00")}}})
			return err
		}},
		{"get by idempotency key", "idempotency_key", func() error {
			_, err := e.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{IdempotencyKey: "held\x00"})
			return err
		}},
		{"cancel reason", "reason", func() error {
			_, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: pending, Reason: "no\x00"})
			return err
		}},
		{"failure message", "error", func() error {
			_, err := e.tasks.FailTask(ctx, &taskqueuev1.FailTaskRequest{TaskId: held.GetTask().GetTaskId(), ClaimToken: held.GetClaimToken(), SessionId: a.id, SessionToken: a.token, Error: "bo\x00om"})
			return err
		}},
		{"result", "result.a.b[1]", func() error {
			_, err := e.tasks.CompleteTask(ctx, &taskqueuev1.CompleteTaskRequest{TaskId: held.GetTask().GetTaskId(), ClaimToken: held.GetClaimToken(), SessionId: a.id, SessionToken: a.token, Result: nested("\x00")})
			return err
		}},
		{"session id", "session_id", func() error {
			_, err := e.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: "s\x00", SessionToken: a.token})
			return err
		}},
		{"listed session id", "claimed_by_session_id", func() error {
			_, err := e.tasks.ListTasks(ctx, &taskqueuev1.ListTasksRequest{ClaimedBySessionId: "s\x00"})
			return err
		}},
		{"lesson project", "project", func() error {
			_, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "p\x00", Name: "n"})
			return err
		}},
		{"lesson name", "name", func() error {
			_, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "p", Name: "n\x00"})
			return err
		}},
		{"lesson objective", "objective", func() error {
			_, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "p", Name: "n", Objective: "\x00"})
			return err
		}},
		{"lesson metadata", "metadata.a.b[1]", func() error {
			_, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "p", Name: "n", Metadata: nested("\x00")})
			return err
		}},
		{"lesson rename", "name", func() error {
			_, err := e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: lesson, Name: "n\x00", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
			return err
		}},
		{"lesson objective update", "objective", func() error {
			_, err := e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: lesson, Objective: "\x00", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"objective"}}})
			return err
		}},
		{"listed project", "project", func() error {
			_, err := e.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{Project: "p\x00"})
			return err
		}},
		{"affinity session name", "session_name", func() error {
			_, err := e.less.ListSessionAffinities(ctx, &taskqueuev1.ListSessionAffinitiesRequest{SessionName: "s\x00"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, tc.call(), codes.InvalidArgument, tc.field)
		})
	}
	if after := e.tableDigest(context.Background()); after != before {
		t.Errorf("a refused request changed the tables:\nbefore %s\nafter  %s", before, after)
	}
}
