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
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cannedTasks(t *testing.T) []*taskqueuev1.Task {
	return []*taskqueuev1.Task{
		{
			TaskId: "t-1", IdempotencyKey: "review:web#42", TaskType: "code_review", Priority: 7, LessonId: "l-1",
			State: taskqueuev1.TaskState_TASK_STATE_CLAIMED, Attempt: 1, MaxAttempts: 3,
			RunAt: timestamppb.New(cannedTime), ClaimTimeout: durationpb.New(10*time.Minute + 300*time.Millisecond),
			ClaimedBySessionId: "6f1c", ClaimedBySessionName: "claude_1", ClaimExpiresAt: timestamppb.New(cannedTime.Add(10 * time.Minute)),
			Payload:   mustStruct(t, map[string]any{"repo": "web", "pr": 42}),
			CreatedAt: timestamppb.New(cannedTime.Add(-time.Hour)), UpdatedAt: timestamppb.New(cannedTime),
		},
		{
			TaskId: "t-2", IdempotencyKey: "lint:web", TaskType: "lint",
			State: taskqueuev1.TaskState_TASK_STATE_DEAD, Attempt: 3, MaxAttempts: 3,
			RunAt: timestamppb.New(cannedTime), LastError: "exit\nstatus 1",
		},
	}
}

func TestRenderTasks(t *testing.T) {
	var out bytes.Buffer
	if err := renderTasks(&out, cannedTasks(t)); err != nil {
		t.Fatal(err)
	}
	want := `ID   TYPE         KEY            STATE    PRIORITY  ATTEMPTS  LESSON  RUN AT                CLAIMED BY
t-1  code_review  review:web#42  claimed  7         1/3       l-1     2026-03-14T09:26:53Z  claude_1
t-2  lint         lint:web       dead     0         3/3       -       2026-03-14T09:26:53Z  -
`
	if got := out.String(); got != want {
		t.Errorf("renderTasks:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	if err := renderTasks(&out, nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "no tasks\n" {
		t.Errorf("renderTasks(nil) = %q", got)
	}
}

func TestRenderTask(t *testing.T) {
	var out bytes.Buffer
	if err := renderTask(&out, cannedTasks(t)[0]); err != nil {
		t.Fatal(err)
	}
	want := `id:             t-1
key:            review:web#42
type:           code_review
state:          claimed
priority:       7
lesson:         l-1
attempts:       1 of 3
run at:         2026-03-14T09:26:53Z
claim timeout:  10m0s
claimed by:     claude_1 (6f1c)
claim expires:  2026-03-14T09:36:53Z
last error:     -
payload:        {"pr":42,"repo":"web"}
result:         -
created at:     2026-03-14T08:26:53Z
updated at:     2026-03-14T09:26:53Z
finished at:    -
`
	if got := out.String(); got != want {
		t.Errorf("renderTask:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	if err := renderTask(&out, cannedTasks(t)[1]); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"state:          dead\n", "claimed by:     -\n", "last error:     exit status 1\n", "claim timeout:  -\n"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestProgressBar(t *testing.T) {
	for _, c := range []struct {
		name              string
		total, done, dead int64
		want              string
	}{
		{"none done", 20, 0, 0, "[--------------------]   0.0%  0/20 done, 0 dead"},
		{"half done", 20, 10, 1, "[##########----------]  50.0%  10/20 done, 1 dead"},
		{"all done", 20, 20, 0, "[####################] 100.0%  20/20 done, 0 dead"},
		{"empty lesson", 0, 0, 0, "[--------------------]   0.0%  no tasks"},
		// A cell fills only once its whole 5 % is done.
		{"a third done", 3, 1, 2, "[######--------------]  33.3%  1/3 done, 2 dead"},
		{"almost done", 1000, 999, 1, "[###################-]  99.9%  999/1000 done, 1 dead"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &taskqueuev1.Lesson{TasksTotal: c.total, TasksCompleted: c.done, TasksDead: c.dead}
			if got := progressBar(l); got != c.want {
				t.Errorf("progressBar = %q, want %q", got, c.want)
			}
		})
	}
}

func cannedLesson() *taskqueuev1.Lesson {
	return &taskqueuev1.Lesson{
		LessonId: "l-1", Project: "web", Name: "Fractions", Objective: "Add fractions\nwith unlike denominators", Priority: 3,
		TasksTotal: 20, TasksCompleted: 10, TasksDead: 1, ProgressPercent: 50,
		CreatedAt: timestamppb.New(cannedTime.Add(-time.Hour)), UpdatedAt: timestamppb.New(cannedTime),
	}
}

func TestRenderLessons(t *testing.T) {
	lessons := []*taskqueuev1.Lesson{cannedLesson(), {LessonId: "l-22", Project: "mobile", Name: "Empty one"}}
	var out bytes.Buffer
	if err := renderLessons(&out, lessons); err != nil {
		t.Fatal(err)
	}
	want := `ID    PROJECT  NAME       PRIORITY  PROGRESS
l-1   web      Fractions  3         [##########----------]  50.0%  10/20 done, 1 dead
l-22  mobile   Empty one  0         [--------------------]   0.0%  no tasks
`
	if got := out.String(); got != want {
		t.Errorf("renderLessons:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderAffinities(t *testing.T) {
	affinities := []*taskqueuev1.SessionAffinity{
		{
			SessionName: "claude_1", LessonId: "l-1", Score: 75,
			TimeWindow: &typev1.TimeWindow{Days: []typev1.Weekday{typev1.Weekday_WEEKDAY_SATURDAY, typev1.Weekday_WEEKDAY_SUNDAY}, StartMinute: 1320, EndMinute: 360, TimeZone: "Europe/Paris"},
			UpdatedAt:  timestamppb.New(cannedTime),
		},
		{SessionName: "ollama_worker_12", LessonId: "l-22", Score: 12.5},
	}
	var out bytes.Buffer
	if err := renderAffinities(&out, affinities); err != nil {
		t.Fatal(err)
	}
	want := `SESSION           LESSON  SCORE  WINDOW                            UPDATED
claude_1          l-1     75     sat,sun 22:00-06:00 Europe/Paris  2026-03-14T09:26:53Z
ollama_worker_12  l-22    12.5   always                            -
`
	if got := out.String(); got != want {
		t.Errorf("renderAffinities:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseTimeWindow(t *testing.T) {
	const (
		mon = typev1.Weekday_WEEKDAY_MONDAY
		tue = typev1.Weekday_WEEKDAY_TUESDAY
		wed = typev1.Weekday_WEEKDAY_WEDNESDAY
		thu = typev1.Weekday_WEEKDAY_THURSDAY
		fri = typev1.Weekday_WEEKDAY_FRIDAY
		sat = typev1.Weekday_WEEKDAY_SATURDAY
		sun = typev1.Weekday_WEEKDAY_SUNDAY
	)
	days := func(d ...typev1.Weekday) []typev1.Weekday { return d }
	for _, c := range []struct {
		in   string
		want *typev1.TimeWindow
	}{
		{"09:00-17:00", &typev1.TimeWindow{StartMinute: 540, EndMinute: 1020}},
		{"  9:00-17:30  ", &typev1.TimeWindow{StartMinute: 540, EndMinute: 1050}},
		{"mon-fri 09:00-17:00 Europe/Paris", &typev1.TimeWindow{Days: days(mon, tue, wed, thu, fri), StartMinute: 540, EndMinute: 1020, TimeZone: "Europe/Paris"}},
		{"Mon, Wed 08:00-12:00 UTC", &typev1.TimeWindow{Days: days(mon, wed), StartMinute: 480, EndMinute: 720, TimeZone: "UTC"}},
		{"tuesday,THU-thu 00:00-24:00", &typev1.TimeWindow{Days: days(tue, thu), StartMinute: 0, EndMinute: 1440}},
		{"mon,mon,sun 10:00-11:00 Asia/Kolkata", &typev1.TimeWindow{Days: days(mon, sun), StartMinute: 600, EndMinute: 660, TimeZone: "Asia/Kolkata"}},
		// Wrapping past midnight, and a day range wrapping past Sunday.
		{"sat,sun 22:00-06:00 America/New_York", &typev1.TimeWindow{Days: days(sat, sun), StartMinute: 1320, EndMinute: 360, TimeZone: "America/New_York"}},
		{"fri-mon 23:30-00:15", &typev1.TimeWindow{Days: days(mon, fri, sat, sun), StartMinute: 1410, EndMinute: 15}},
		// Closing at 00:00 is closing at midnight, which the proto spells 1440.
		{"22:00-00:00", &typev1.TimeWindow{StartMinute: 1320, EndMinute: 1440}},
		{"00:00-23:59 Etc/GMT-5", &typev1.TimeWindow{StartMinute: 0, EndMinute: 1439, TimeZone: "Etc/GMT-5"}},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseTimeWindow(c.in)
			if err != nil {
				t.Fatalf("parseTimeWindow: %v", err)
			}
			if !proto.Equal(got, c.want) {
				t.Errorf("parseTimeWindow = %v, want %v", got, c.want)
			}
		})
	}

	for _, c := range []struct{ in, want string }{
		{"", "no HH:MM-HH:MM time range"},
		{"mon-fri", "no HH:MM-HH:MM time range"},
		{"9-17", "no HH:MM-HH:MM time range"},
		{"09:00", `time range "09:00" is not HH:MM-HH:MM`},
		{"09:00-", `time "" is not HH:MM`},
		{"9:5-10:00", `time "9:5" is not HH:MM`},
		{"+9:00-10:00", `time "+9:00" is not HH:MM`},
		{"009:00-10:00", `time "009:00" is not HH:MM`},
		{"24:00-06:00", `time "24:00" is not a time of day (00:00 to 23:59)`},
		{"09:60-10:00", `time "09:60" is not a time of day`},
		{"09:00-24:01", `time "24:01" is not a time of day (00:00 to 24:00)`},
		{"09:00-09:00", "opens and closes at the same time"},
		{"00:00-00:00", "opens and closes at the same time"},
		{"mon-fry 09:00-17:00", `unknown day "fry"`},
		{"mon,,tue 09:00-17:00", `unknown day ""`},
		{"Europe/Paris 09:00-17:00", `unknown day "europe/paris"`},
		{"09:00-17:00 Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		{"09:00-17:00 Local", `time zone "Local"`},
		{"09:00-17:00 Europe/Paris extra words", `unexpected "extra words"`},
	} {
		t.Run("bad "+c.in, func(t *testing.T) {
			got, err := parseTimeWindow(c.in)
			if err == nil {
				t.Fatalf("parseTimeWindow = %v, want an error", got)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
}

func TestParsedTimeWindowPrintsBack(t *testing.T) {
	for _, in := range []string{"mon,wed 09:30-17:00 Europe/Paris", "sat 22:00-06:00 UTC"} {
		w, err := parseTimeWindow(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatTimeWindow(w); got != in {
			t.Errorf("formatTimeWindow(parseTimeWindow(%q)) = %q", in, got)
		}
	}
}

func TestTaskListFlagsBuildTheRequest(t *testing.T) {
	f := taskListFlags{states: []string{"dead", "CANCELLED", "task_state_pending"}, types: []string{"lint", "code_review"}, lesson: "l-1", session: "6f1c"}
	got, err := f.request()
	if err != nil {
		t.Fatal(err)
	}
	want := &taskqueuev1.ListTasksRequest{
		States:             []taskqueuev1.TaskState{taskqueuev1.TaskState_TASK_STATE_DEAD, taskqueuev1.TaskState_TASK_STATE_CANCELLED, taskqueuev1.TaskState_TASK_STATE_PENDING},
		TaskTypes:          []string{"lint", "code_review"},
		LessonId:           "l-1",
		ClaimedBySessionId: "6f1c",
	}
	if !proto.Equal(got, want) {
		t.Errorf("request = %v, want %v", got, want)
	}
}

func TestTaskQueueCommandsRejectBadUsage(t *testing.T) {
	// Nothing listens here: a usage error must be found before any call.
	const nowhere = "127.0.0.1:1"
	enqueue := []string{"task", "enqueue", "--type", "lint", "--key", "k"}
	affinity := []string{"affinity", "set", "--session", "claude_1", "--lesson", "l-1"}
	with := func(base []string, more ...string) []string { return append(append([]string(nil), base...), more...) }
	for _, c := range []struct {
		args []string
		want []string // in stderr
	}{
		{[]string{"task", "enqueue", "--key", "k"}, []string{"missing required flag(s) --type"}},
		{[]string{"task", "enqueue"}, []string{"--type, --key"}},
		{with(enqueue, "--priority", "11"), []string{"invalid value 11 for --priority: want 0 to 10"}},
		{with(enqueue, "--priority", "-1"), []string{"--priority", "0 to 10"}},
		{with(enqueue, "--priority", "high"), []string{"--priority"}},
		{with(enqueue, "--max-attempts", "0"), []string{"--max-attempts", "1 to 100"}},
		{with(enqueue, "--max-attempts", "101"), []string{"--max-attempts"}},
		{with(enqueue, "--claim-timeout", "500ms"), []string{"--claim-timeout", "1s to 24h0m0s"}},
		{with(enqueue, "--claim-timeout", "soon"), []string{"--claim-timeout"}},
		{with(enqueue, "--run-at", "tomorrow"), []string{`invalid value "tomorrow" for --run-at`, "RFC 3339"}},
		{with(enqueue, "--run-at", "2026-03-14T09:30:00Z", "--delay", "5m"), []string{"--run-at or --delay, not both"}},
		{with(enqueue, "--delay", "-5m"), []string{"--delay"}},
		{with(enqueue, "--payload", "[1,2]"), []string{"--payload", "JSON object"}},
		{with(enqueue, "--payload", "{bad"), []string{"--payload", "JSON object"}},
		{with(enqueue, "--payload", "{}", "--payload-file", "p.json"), []string{"--payload or --payload-file, not both"}},
		{with(enqueue, "--payload-file", "/nonexistent/payload.json"), []string{"--payload-file"}},
		{with(enqueue, "extra"), []string{"unknown command"}},
		{[]string{"task", "list", "--state", "zombie"}, []string{`invalid value "zombie" for --state`, "pending, claimed, completed, dead, cancelled"}},
		{[]string{"task", "list", "--state", "dead,bogus"}, []string{`"bogus" for --state`}},
		{[]string{"task", "list", "--state", "unspecified"}, []string{"--state"}},
		{[]string{"task", "list", "--limit", "-1"}, []string{"--limit"}},
		{[]string{"task", "list", "--timeout", "0s"}, []string{"--timeout"}},
		{[]string{"task", "list", "--taskqueue", "no-port"}, []string{`--taskqueue "no-port": want host:port`}},
		{[]string{"task", "get"}, []string{"give a task id or --key"}},
		{[]string{"task", "get", "t-1", "--key", "k"}, []string{"not both"}},
		{[]string{"task", "cancel"}, []string{"accepts 1 arg"}},
		{[]string{"task", "retry", "t-1", "--run-at", "yesterday"}, []string{"--run-at"}},
		{[]string{"task", "bogus"}, []string{`unknown command "bogus"`}},
		{[]string{"lesson", "create", "--project", "web"}, []string{"--name"}},
		{[]string{"lesson", "create", "--project", "web", "--name", "n", "--priority", "42"}, []string{"--priority", "0 to 10"}},
		{[]string{"lesson", "list", "--limit", "-2"}, []string{"--limit"}},
		{[]string{"lesson", "get"}, []string{"accepts 1 arg"}},
		{affinity, []string{"--score"}},
		{with(affinity, "--score", "101"), []string{"invalid value 101 for --score: want 0 to 100"}},
		{with(affinity, "--score", "NaN"), []string{"--score"}},
		{with(affinity, "--score", "5", "--window", "mon-fry 09:00-17:00"), []string{`invalid value "mon-fry 09:00-17:00" for --window`, `unknown day "fry"`, "[DAYS] HH:MM-HH:MM [ZONE]"}},
		{with(affinity, "--score", "5", "--window", "25:00-26:00"), []string{"--window", "not a time of day"}},
		{with(affinity, "--score", "5", "--window", ""), []string{"--window"}},
		{[]string{"affinity", "list"}, []string{"give --session or --lesson"}},
		{[]string{"affinity", "delete", "--session", "claude_1"}, []string{"--lesson"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := c.args
			if !strings.Contains(strings.Join(args, " "), "--taskqueue") {
				args = with(args, "--taskqueue", nowhere)
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
		})
	}
}

func TestBadTaskQueueAddrFromEnvironmentIsAConfigError(t *testing.T) {
	t.Setenv(taskQueueAddrEnv, "no-port")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"lesson", "get", "l-1"}, &stdout, &stderr); code != exitBadConfig {
		t.Errorf("exit %d, want %d; stderr: %s", code, exitBadConfig, stderr.String())
	}
	if !strings.Contains(stderr.String(), taskQueueAddrEnv) {
		t.Errorf("stderr %q does not name %s", stderr.String(), taskQueueAddrEnv)
	}
}

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
