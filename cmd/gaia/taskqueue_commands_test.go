package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

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
