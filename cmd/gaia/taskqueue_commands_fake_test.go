package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

// The task queue commands against a fake TaskService and LessonService:
// the requests they build and how they print the answers.

// fakeTaskQueue serves canned TaskService and LessonService answers and
// remembers every request it was sent.
type fakeTaskQueue struct {
	taskqueuev1.UnimplementedTaskServiceServer
	taskqueuev1.UnimplementedLessonServiceServer

	existingKey string                           // enqueueing it is a duplicate
	taskPages   []*taskqueuev1.ListTasksResponse // by page token "", "1", "2", …
	lesson      *taskqueuev1.Lesson

	mu       sync.Mutex
	requests []proto.Message
}

func (f *fakeTaskQueue) record(req proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(req))
}

// received returns the requests sent since the last call.
func (f *fakeTaskQueue) received() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func (f *fakeTaskQueue) EnqueueTask(_ context.Context, req *taskqueuev1.EnqueueTaskRequest) (*taskqueuev1.EnqueueTaskResponse, error) {
	f.record(req)
	return &taskqueuev1.EnqueueTaskResponse{
		Task: &taskqueuev1.Task{
			TaskId: "t-" + req.GetIdempotencyKey(), IdempotencyKey: req.GetIdempotencyKey(), TaskType: req.GetTaskType(),
			Payload: req.GetPayload(), Priority: req.GetPriority(), LessonId: req.GetLessonId(), State: taskqueuev1.TaskState_TASK_STATE_PENDING,
			MaxAttempts: max(req.GetMaxAttempts(), 3), RunAt: req.GetRunAt(), ClaimTimeout: req.GetClaimTimeout(),
		},
		Duplicate: req.GetIdempotencyKey() == f.existingKey,
	}, nil
}

func (f *fakeTaskQueue) ListTasks(_ context.Context, req *taskqueuev1.ListTasksRequest) (*taskqueuev1.ListTasksResponse, error) {
	f.record(req)
	return fakePage(f.taskPages, req.GetPageToken())
}

func (f *fakeTaskQueue) GetTask(_ context.Context, req *taskqueuev1.GetTaskRequest) (*taskqueuev1.GetTaskResponse, error) {
	f.record(req)
	return nil, status.Errorf(codes.NotFound, "task %s not found", req.GetTaskId())
}

func (f *fakeTaskQueue) GetLesson(_ context.Context, req *taskqueuev1.GetLessonRequest) (*taskqueuev1.GetLessonResponse, error) {
	f.record(req)
	return &taskqueuev1.GetLessonResponse{Lesson: f.lesson}, nil
}

func (f *fakeTaskQueue) SetSessionAffinity(_ context.Context, req *taskqueuev1.SetSessionAffinityRequest) (*taskqueuev1.SetSessionAffinityResponse, error) {
	f.record(req)
	return &taskqueuev1.SetSessionAffinityResponse{Affinity: &taskqueuev1.SessionAffinity{
		SessionName: req.GetSessionName(), LessonId: req.GetLessonId(), Score: req.GetScore(), TimeWindow: req.GetTimeWindow(),
		CreatedAt: timestamppb.New(cannedTime), UpdatedAt: timestamppb.New(cannedTime),
	}}, nil
}

func startFakeTaskQueue(t *testing.T, f *fakeTaskQueue) string {
	return startFakeServer(t, func(s *grpc.Server) {
		taskqueuev1.RegisterTaskServiceServer(s, f)
		taskqueuev1.RegisterLessonServiceServer(s, f)
	})
}

// assertRequests compares what a fake received with what the command should
// have sent.
func assertRequests(t *testing.T, got []proto.Message, want ...proto.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("the server received %d requests, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("request %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestTaskEnqueueAgainstAFakeTaskQueue(t *testing.T) {
	fake := &fakeTaskQueue{existingKey: "lint:web"}
	addr := startFakeTaskQueue(t, fake)

	var stdout, stderr bytes.Buffer
	args := []string{"task", "enqueue", "--taskqueue", addr,
		"--type", "code_review", "--key", "review:web#42", "--payload", `{"repo": "web", "pr": 42}`,
		"--priority", "7", "--lesson", "l-1", "--run-at", "2026-03-14T10:30:00+01:00", "--max-attempts", "5", "--claim-timeout", "10m"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	assertRequests(t, fake.received(), &taskqueuev1.EnqueueTaskRequest{
		IdempotencyKey: "review:web#42",
		TaskType:       "code_review",
		Payload:        mustStruct(t, map[string]any{"repo": "web", "pr": 42}),
		Priority:       7,
		LessonId:       "l-1",
		RunAt:          timestamppb.New(time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)),
		MaxAttempts:    5,
		ClaimTimeout:   durationpb.New(10 * time.Minute),
	})
	for _, line := range []string{"enqueued task t-review:web#42\n\n", "state:          pending\n", "run at:         2026-03-14T09:30:00Z\n", `payload:        {"pr":42,"repo":"web"}` + "\n"} {
		if !strings.Contains(stdout.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, stdout.String())
		}
	}

	// A duplicate, with the payload on standard input, a delay and the
	// address from the environment; flags not given stay unset.
	t.Setenv(taskQueueAddrEnv, addr)
	root := newRootCommand(&stdout, &stderr)
	root.SetIn(strings.NewReader(`{"paths": ["a.go"]}`))
	root.SetArgs([]string{"task", "enqueue", "--type", "lint", "--key", "lint:web", "--payload", "-", "--delay", "5m"})
	stdout.Reset()
	before := time.Now()
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got := fake.received()
	if len(got) != 1 {
		t.Fatalf("the server received %d requests, want 1", len(got))
	}
	req := got[0].(*taskqueuev1.EnqueueTaskRequest)
	if runAt := req.GetRunAt().AsTime(); runAt.Before(before.Add(5*time.Minute)) || runAt.After(after.Add(5*time.Minute)) {
		t.Errorf("run_at = %v, want 5m after %v", runAt, before)
	}
	req.RunAt = nil
	assertRequests(t, got, &taskqueuev1.EnqueueTaskRequest{
		IdempotencyKey: "lint:web",
		TaskType:       "lint",
		Payload:        mustStruct(t, map[string]any{"paths": []any{"a.go"}}),
	})
	if want := `duplicate: key "lint:web" already names task t-lint:web; nothing was changed` + "\n\n"; !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("output does not start with %q:\n%s", want, stdout.String())
	}
}

func TestTaskListJSONPagesAgainstAFakeTaskQueue(t *testing.T) {
	tasks := cannedTasks(t)
	third := proto.CloneOf(tasks[1])
	third.TaskId, third.IdempotencyKey = "t-3", "lint:api"
	fake := &fakeTaskQueue{taskPages: []*taskqueuev1.ListTasksResponse{
		{Tasks: tasks[:1], NextPageToken: "1"},
		{Tasks: tasks[1:], NextPageToken: "2"},
		{Tasks: []*taskqueuev1.Task{third}},
	}}
	addr := startFakeTaskQueue(t, fake)

	var stdout, stderr bytes.Buffer
	args := []string{"task", "list", "--json", "--taskqueue", addr,
		"--state", "claimed,dead", "--state", "pending", "--type", "lint", "--type", "code_review", "--lesson", "l-1", "--session", "6f1c"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("output is not one line: %q", out)
	}
	for _, field := range []string{`"task_id":"t-1"`, `"state":"TASK_STATE_DEAD"`, `"idempotency_key":"lint:api"`} {
		if !strings.Contains(out, field) {
			t.Errorf("output lacks %s: %s", field, out)
		}
	}
	var got taskqueuev1.ListTasksResponse
	if err := protojson.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not the response as JSON: %v", err)
	}
	if want := (&taskqueuev1.ListTasksResponse{Tasks: []*taskqueuev1.Task{tasks[0], tasks[1], third}}); !proto.Equal(&got, want) {
		t.Errorf("decoded %v, want %v", &got, want)
	}

	filter := &taskqueuev1.ListTasksRequest{
		States:             []taskqueuev1.TaskState{taskqueuev1.TaskState_TASK_STATE_CLAIMED, taskqueuev1.TaskState_TASK_STATE_DEAD, taskqueuev1.TaskState_TASK_STATE_PENDING},
		TaskTypes:          []string{"lint", "code_review"},
		LessonId:           "l-1",
		ClaimedBySessionId: "6f1c",
		PageSize:           maxPageSize,
	}
	page := func(token string) *taskqueuev1.ListTasksRequest {
		r := proto.CloneOf(filter)
		r.PageToken = token
		return r
	}
	assertRequests(t, fake.received(), page(""), page("1"), page("2"))

	// --limit stops paging, asks only for what it still needs, and says
	// where it stopped.
	stdout.Reset()
	if code := run([]string{"task", "list", "--json", "--taskqueue", addr, "--limit", "2"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	got.Reset()
	if err := protojson.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("--json output: %v", err)
	}
	if len(got.GetTasks()) != 2 || got.GetTasks()[1].GetTaskId() != "t-2" || got.GetNextPageToken() != "2" {
		t.Errorf("--limit 2 listed %v", &got)
	}
	assertRequests(t, fake.received(), &taskqueuev1.ListTasksRequest{PageSize: 2}, &taskqueuev1.ListTasksRequest{PageSize: 1, PageToken: "1"})
}

func TestLessonGetAgainstAFakeTaskQueue(t *testing.T) {
	fake := &fakeTaskQueue{lesson: cannedLesson()}
	addr := startFakeTaskQueue(t, fake)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"lesson", "get", "l-1", "--taskqueue", addr}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	assertRequests(t, fake.received(), &taskqueuev1.GetLessonRequest{LessonId: "l-1"})
	want := `id:          l-1
project:     web
name:        Fractions
objective:   Add fractions with unlike denominators
priority:    3
progress:    [##########----------]  50.0%  10/20 done, 1 dead
metadata:    -
created at:  2026-03-14T08:26:53Z
updated at:  2026-03-14T09:26:53Z
`
	if got := stdout.String(); got != want {
		t.Errorf("lesson get:\n%s\nwant:\n%s", got, want)
	}
}

func TestAffinitySetAgainstAFakeTaskQueue(t *testing.T) {
	fake := &fakeTaskQueue{}
	addr := startFakeTaskQueue(t, fake)

	var stdout, stderr bytes.Buffer
	args := []string{"affinity", "set", "--taskqueue", addr,
		"--session", "claude_1", "--lesson", "l-1", "--score", "75.5", "--window", "mon-fri 22:00-06:00 Europe/Paris"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	assertRequests(t, fake.received(), &taskqueuev1.SetSessionAffinityRequest{
		SessionName: "claude_1",
		LessonId:    "l-1",
		Score:       75.5,
		TimeWindow: &typev1.TimeWindow{
			Days: []typev1.Weekday{
				typev1.Weekday_WEEKDAY_MONDAY, typev1.Weekday_WEEKDAY_TUESDAY, typev1.Weekday_WEEKDAY_WEDNESDAY,
				typev1.Weekday_WEEKDAY_THURSDAY, typev1.Weekday_WEEKDAY_FRIDAY,
			},
			StartMinute: 1320,
			EndMinute:   360,
			TimeZone:    "Europe/Paris",
		},
	})
	want := `session:     claude_1
lesson:      l-1
score:       75.5
window:      mon,tue,wed,thu,fri 22:00-06:00 Europe/Paris
created at:  2026-03-14T09:26:53Z
updated at:  2026-03-14T09:26:53Z
`
	if got := stdout.String(); got != want {
		t.Errorf("affinity set:\n%s\nwant:\n%s", got, want)
	}

	// Without --window the affinity always counts: no window is sent.
	if code := run([]string{"affinity", "set", "--taskqueue", addr, "--session", "claude_1", "--lesson", "l-1", "--score", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	assertRequests(t, fake.received(), &taskqueuev1.SetSessionAffinityRequest{SessionName: "claude_1", LessonId: "l-1"})
}

func TestTaskQueueErrorIsPrintedWithItsCode(t *testing.T) {
	fake := &fakeTaskQueue{}
	addr := startFakeTaskQueue(t, fake)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"task", "get", "t-9", "--taskqueue", addr}, &stdout, &stderr); code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	if got, want := stderr.String(), "gaia: not_found: task t-9 not found\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	assertRequests(t, fake.received(), &taskqueuev1.GetTaskRequest{TaskId: "t-9"})
}
