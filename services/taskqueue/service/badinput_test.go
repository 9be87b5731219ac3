package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestBadInputIsRefusedWithItsCode sends each kind of bad request and checks
// its specific code, the field a BadRequest names for INVALID_ARGUMENT, and
// that no task, lesson or affinity changed.
func TestBadInputIsRefusedWithItsCode(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	owner := e.register(ctx, "owner", agentOpts{maxTasks: 5})
	other := e.register(ctx, "other", agentOpts{maxTasks: 5})
	lesson := e.lesson(ctx, "bad", "bad", 0).GetLessonId()

	// A completed task, a claimed one (with a stale token from an earlier
	// claim), and a pending one.
	doneID := e.enqueue(ctx, newTaskReq("done", "work", 9, lesson, 0)).GetTaskId()
	c := e.mustClaim(ctx, owner, 1)[0]
	if _, err := e.complete(ctx, owner, c); err != nil {
		t.Fatal(err)
	}
	heldID := e.enqueue(ctx, newTaskReq("held", "work", 8, lesson, 1)).GetTaskId()
	first := e.mustClaim(ctx, owner, 1)[0]
	if _, err := e.fail(ctx, owner, first, true); err != nil {
		t.Fatal(err)
	}
	e.makeRunnable(ctx, heldID)
	held := e.mustClaim(ctx, owner, 1)[0]
	if held.GetTask().GetTaskId() != heldID || held.GetTask().GetAttempt() != 2 {
		t.Fatalf("reclaim: %s attempt %d", held.GetTask().GetTaskId(), held.GetTask().GetAttempt())
	}
	pendingReq := newTaskReq("pending", "work", 0, lesson, 2)
	pendingID := e.enqueue(ctx, pendingReq).GetTaskId()
	if _, err := e.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: "owner", LessonId: lesson, Score: 10}); err != nil {
		t.Fatal(err)
	}

	const unknownID = "00000000-0000-4000-8000-000000000000"
	big := strings.Repeat("x", 256<<10)
	bigPayload, _ := structpb.NewStruct(map[string]any{"blob": big})
	okTask := func(key string) *taskqueuev1.EnqueueTaskRequest { return newTaskReq(key, "work", 0, "", 0) }
	withTask := func(f func(r *taskqueuev1.EnqueueTaskRequest)) *taskqueuev1.EnqueueTaskRequest {
		r := okTask("fresh-key")
		f(r)
		return r
	}
	batch := func(bad int, f func(r *taskqueuev1.EnqueueTaskRequest)) *taskqueuev1.EnqueueTasksRequest {
		req := &taskqueuev1.EnqueueTasksRequest{}
		for i := range 5 {
			r := okTask(keyOf("batch", i))
			if i == bad {
				f(r)
			}
			req.Tasks = append(req.Tasks, r)
		}
		return req
	}
	enqueue := func(r *taskqueuev1.EnqueueTaskRequest) func(ctx context.Context) error {
		return func(ctx context.Context) error { _, err := e.tasks.EnqueueTask(ctx, r); return err }
	}
	claimReq := func(f func(r *taskqueuev1.ClaimTasksRequest)) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			r := &taskqueuev1.ClaimTasksRequest{SessionId: other.id, SessionToken: other.token, MaxTasks: 1}
			f(r)
			_, err := e.tasks.ClaimTasks(ctx, r)
			return err
		}
	}
	completeReq := func(f func(r *taskqueuev1.CompleteTaskRequest)) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			r := &taskqueuev1.CompleteTaskRequest{TaskId: heldID, ClaimToken: held.GetClaimToken(), SessionId: owner.id, SessionToken: owner.token}
			f(r)
			_, err := e.tasks.CompleteTask(ctx, r)
			return err
		}
	}

	cases := []struct {
		name  string
		call  func(ctx context.Context) error
		code  codes.Code
		field string
	}{
		{"missing idempotency key", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.IdempotencyKey = "" })), codes.InvalidArgument, "idempotency_key"},
		{"oversize idempotency key", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.IdempotencyKey = strings.Repeat("k", 257) })), codes.InvalidArgument, "idempotency_key"},
		{"missing task type", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.TaskType = "" })), codes.InvalidArgument, "task_type"},
		{"task type with spaces", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.TaskType = "two words" })), codes.InvalidArgument, "task_type"},
		{"priority -1", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.Priority = -1 })), codes.InvalidArgument, "priority"},
		{"priority 11", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.Priority = 11 })), codes.InvalidArgument, "priority"},
		{"payload over 256 KiB", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.Payload = bigPayload })), codes.InvalidArgument, "payload"},
		{"max_attempts 101", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.MaxAttempts = 101 })), codes.InvalidArgument, "max_attempts"},
		{"claim_timeout under a second", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.ClaimTimeout = durationpb.New(500 * time.Millisecond) })), codes.InvalidArgument, "claim_timeout"},
		{"malformed lesson id", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.LessonId = "lesson-1" })), codes.InvalidArgument, "lesson_id"},
		{"unknown lesson", enqueue(withTask(func(r *taskqueuev1.EnqueueTaskRequest) { r.LessonId = unknownID })), codes.InvalidArgument, "lesson_id"},
		{"batch with a bad priority at index 3", func(ctx context.Context) error {
			_, err := e.tasks.EnqueueTasks(ctx, batch(3, func(r *taskqueuev1.EnqueueTaskRequest) { r.Priority = 11 }))
			return err
		}, codes.InvalidArgument, "tasks[3].priority"},
		{"batch with an unknown lesson at index 2", func(ctx context.Context) error {
			_, err := e.tasks.EnqueueTasks(ctx, batch(2, func(r *taskqueuev1.EnqueueTaskRequest) { r.LessonId = unknownID }))
			return err
		}, codes.InvalidArgument, "tasks[2].lesson_id"},
		{"empty batch", func(ctx context.Context) error {
			_, err := e.tasks.EnqueueTasks(ctx, &taskqueuev1.EnqueueTasksRequest{})
			return err
		}, codes.InvalidArgument, "tasks"},
		{"get an unknown task", func(ctx context.Context) error {
			_, err := e.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: unknownID})
			return err
		}, codes.NotFound, ""},
		{"get by an unknown key", func(ctx context.Context) error {
			_, err := e.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{IdempotencyKey: "nope"})
			return err
		}, codes.NotFound, ""},
		{"get a malformed task id", func(ctx context.Context) error {
			_, err := e.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: "task-1"})
			return err
		}, codes.InvalidArgument, "task_id"},
		{"cancel an unknown task", func(ctx context.Context) error {
			_, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: unknownID})
			return err
		}, codes.NotFound, ""},
		{"cancel a malformed task id", func(ctx context.Context) error {
			_, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: "42"})
			return err
		}, codes.InvalidArgument, "task_id"},
		{"cancel a completed task", func(ctx context.Context) error {
			_, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: doneID})
			return err
		}, codes.FailedPrecondition, ""},
		{"retry a pending task", func(ctx context.Context) error {
			_, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: pendingID})
			return err
		}, codes.FailedPrecondition, ""},
		{"retry a claimed task", func(ctx context.Context) error {
			_, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: heldID})
			return err
		}, codes.FailedPrecondition, ""},
		{"retry an unknown task", func(ctx context.Context) error {
			_, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: unknownID})
			return err
		}, codes.NotFound, ""},
		{"complete with a stale claim token", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.ClaimToken = first.GetClaimToken() }), codes.FailedPrecondition, ""},
		{"extend with a stale claim token", func(ctx context.Context) error {
			_, err := e.tasks.ExtendClaim(ctx, &taskqueuev1.ExtendClaimRequest{TaskId: heldID, ClaimToken: first.GetClaimToken(), SessionId: owner.id, SessionToken: owner.token})
			return err
		}, codes.FailedPrecondition, ""},
		{"complete an unknown task", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.TaskId, r.ClaimToken = unknownID, unknownID+".1" }), codes.NotFound, ""},
		{"complete a malformed task id", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.TaskId = "t1" }), codes.InvalidArgument, "task_id"},
		{"claim token of another task", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.ClaimToken = doneID + ".1" }), codes.InvalidArgument, "claim_token"},
		{"malformed claim token", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.ClaimToken = heldID + ".x" }), codes.InvalidArgument, "claim_token"},
		{"missing claim token", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.ClaimToken = "" }), codes.InvalidArgument, "claim_token"},
		{"complete with a wrong session token", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.SessionToken = other.token }), codes.Unauthenticated, ""},
		{"complete as another session", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.SessionId, r.SessionToken = other.id, other.token }), codes.FailedPrecondition, ""},
		{"complete as an unknown session", completeReq(func(r *taskqueuev1.CompleteTaskRequest) { r.SessionId = unknownID }), codes.FailedPrecondition, ""},
		{"claim with a wrong session token", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.SessionToken = owner.token }), codes.Unauthenticated, ""},
		{"claim as an unknown session", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.SessionId = unknownID }), codes.FailedPrecondition, ""},
		{"claim without a session token", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.SessionToken = "" }), codes.InvalidArgument, "session_token"},
		{"claim waiting over 60 s", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.Wait = durationpb.New(61 * time.Second) }), codes.InvalidArgument, "wait"},
		{"claim a negative wait", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.Wait = durationpb.New(-time.Second) }), codes.InvalidArgument, "wait"},
		{"claim over 100 tasks", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.MaxTasks = 101 }), codes.InvalidArgument, "max_tasks"},
		{"claim a negative count", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.MaxTasks = -1 }), codes.InvalidArgument, "max_tasks"},
		{"claim a bad task type", claimReq(func(r *taskqueuev1.ClaimTasksRequest) { r.TaskTypes = []string{"ok", "not ok"} }), codes.InvalidArgument, "task_types[1]"},
		{"fail with an oversize error", func(ctx context.Context) error {
			_, err := e.tasks.FailTask(ctx, &taskqueuev1.FailTaskRequest{TaskId: heldID, ClaimToken: held.GetClaimToken(), SessionId: owner.id, SessionToken: owner.token, Error: strings.Repeat("e", 8<<10+1)})
			return err
		}, codes.InvalidArgument, "error"},
		{"create a lesson without a name", func(ctx context.Context) error {
			_, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "bad"})
			return err
		}, codes.InvalidArgument, "name"},
		{"create a lesson twice", func(ctx context.Context) error {
			_, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "bad", Name: "bad"})
			return err
		}, codes.AlreadyExists, ""},
		{"get an unknown lesson", func(ctx context.Context) error {
			_, err := e.less.GetLesson(ctx, &taskqueuev1.GetLessonRequest{LessonId: unknownID})
			return err
		}, codes.NotFound, ""},
		{"update a lesson with an unknown mask path", func(ctx context.Context) error {
			_, err := e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: lesson, Name: "x", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"tasks_total"}}})
			return err
		}, codes.InvalidArgument, "update_mask"},
		{"update a lesson's priority to 11", func(ctx context.Context) error {
			_, err := e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: lesson, Priority: 11, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"priority"}}})
			return err
		}, codes.InvalidArgument, "priority"},
		{"affinity for an unknown lesson", func(ctx context.Context) error {
			_, err := e.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: "owner", LessonId: unknownID, Score: 1})
			return err
		}, codes.NotFound, ""},
		{"affinity score over 100", func(ctx context.Context) error {
			_, err := e.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: "owner", LessonId: lesson, Score: 101})
			return err
		}, codes.InvalidArgument, "score"},
		{"delete an unknown affinity", func(ctx context.Context) error {
			_, err := e.less.DeleteSessionAffinity(ctx, &taskqueuev1.DeleteSessionAffinityRequest{SessionName: "nobody", LessonId: lesson})
			return err
		}, codes.NotFound, ""},
		{"list tasks with a forged page token", func(ctx context.Context) error {
			_, err := e.tasks.ListTasks(ctx, &taskqueuev1.ListTasksRequest{PageToken: "forged"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"list lessons with page size 1001", func(ctx context.Context) error {
			_, err := e.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{PageSize: 1001})
			return err
		}, codes.InvalidArgument, "page_size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.tableDigest(ctx)
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			wantStatus(t, tc.call(callCtx), tc.code, tc.field)
			if after := e.tableDigest(ctx); after != before {
				t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	// The refused batches inserted none of their good tasks.
	for i := range 5 {
		if _, err := e.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{IdempotencyKey: keyOf("batch", i)}); statusCode(err) != codes.NotFound {
			t.Fatalf("task %d of a refused batch: %v", i, err)
		}
	}
	// And the held claim is still good.
	if _, err := e.complete(ctx, owner, held); err != nil {
		t.Fatalf("the held claim after all that: %v", err)
	}
}
