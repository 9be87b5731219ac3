package service_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gaia-platform/gaia/internal/pgtest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// queueEnv is one test's world: a coordinator, a queue on a fresh database,
// and a pool on that database for assertions the API cannot make.
type queueEnv struct {
	t      *testing.T
	coord  *coordtest.Cluster
	coordc *client.Client
	q      *queuetest.Queue
	dbURL  string
	db     *pgxpool.Pool
	tasks  taskqueuev1.TaskServiceClient
	less   taskqueuev1.LessonServiceClient
}

func startQueueEnv(t *testing.T, co coordtest.Options, qo queuetest.Options) *queueEnv {
	t.Helper()
	co.Quiet, qo.Quiet = true, true
	e := &queueEnv{t: t}
	e.coord = coordtest.Start(t, 1, co)
	e.coordc = e.coord.Client()
	e.dbURL = pgtest.NewDatabase(t)
	e.db = pgtest.Pool(t, e.dbURL)
	qo.Keys = e.coord.Keys
	e.q = queuetest.Start(t, e.dbURL, e.coord.Addrs(), qo)
	e.tasks, e.less = e.q.Tasks(), e.q.Lessons()
	return e
}

// startLoadEnv is startQueueEnv for the load tests. Their database commits
// without waiting for the WAL flush: they check what the queue does under
// concurrency, not that PostgreSQL survives a power cut, and on a small
// machine the flush of 20,000 single-task commits dominates their run time.
func startLoadEnv(t *testing.T, co coordtest.Options, qo queuetest.Options) *queueEnv {
	t.Helper()
	e := &queueEnv{t: t}
	co.Quiet, qo.Quiet = true, true
	e.coord = coordtest.Start(t, 1, co)
	e.coordc = e.coord.Client()
	e.dbURL = pgtest.NewDatabase(t)
	e.db = pgtest.Pool(t, e.dbURL)
	var name string
	if err := e.db.QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(context.Background(), `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` SET synchronous_commit = off`); err != nil {
		t.Fatal(err)
	}
	qo.Keys = e.coord.Keys
	e.q = queuetest.Start(t, e.dbURL, e.coord.Addrs(), qo)
	e.tasks, e.less = e.q.Tasks(), e.q.Lessons()
	return e
}

// testCtx bounds one test's calls.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// agent is a registered coordinator session as a worker holds it.
type agent struct {
	id, token, name string
	hb              *client.Heartbeater
}

type agentOpts struct {
	maxTasks int32
	windows  []*typev1.TimeWindow
	// beat starts a heartbeat at this interval (none when zero).
	beat time.Duration
}

func (e *queueEnv) register(ctx context.Context, name string, o agentOpts) *agent {
	e.t.Helper()
	if o.maxTasks == 0 {
		o.maxTasks = 1
	}
	reg, err := e.coordc.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
		Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
		MaxConcurrentTasks: o.maxTasks, TimeWindows: o.windows,
	})
	if err != nil {
		e.t.Fatalf("register %s: %v", name, err)
	}
	a := &agent{id: reg.GetSession().GetSessionId(), token: reg.GetSessionToken(), name: name}
	if o.beat > 0 {
		a.hb = e.coordc.StartHeartbeat(context.Background(), a.id, a.token, o.beat, nil)
		e.t.Cleanup(a.hb.Stop)
	}
	return a
}

func (e *queueEnv) claim(ctx context.Context, a *agent, max int32, wait time.Duration) ([]*taskqueuev1.Claim, error) {
	resp, err := e.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: a.id, SessionToken: a.token, MaxTasks: max, Wait: durationpb.New(wait)})
	return resp.GetClaims(), err
}

// mustClaim claims exactly n tasks (waiting up to 5 s for them).
func (e *queueEnv) mustClaim(ctx context.Context, a *agent, n int32) []*taskqueuev1.Claim {
	e.t.Helper()
	claims, err := e.claim(ctx, a, n, 5*time.Second)
	if err != nil || len(claims) != int(n) {
		e.t.Fatalf("claim %d for %s: got %d claims, %v", n, a.name, len(claims), err)
	}
	return claims
}

func (e *queueEnv) complete(ctx context.Context, a *agent, c *taskqueuev1.Claim) (*taskqueuev1.Task, error) {
	resp, err := e.tasks.CompleteTask(ctx, &taskqueuev1.CompleteTaskRequest{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken(), SessionId: a.id, SessionToken: a.token})
	return resp.GetTask(), err
}

func (e *queueEnv) fail(ctx context.Context, a *agent, c *taskqueuev1.Claim, retryable bool) (*taskqueuev1.FailTaskResponse, error) {
	return e.tasks.FailTask(ctx, &taskqueuev1.FailTaskRequest{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken(), SessionId: a.id, SessionToken: a.token, Error: "boom", Retryable: retryable})
}

// newTaskReq builds an enqueue request; n lands in the payload.
func newTaskReq(key, typ string, priority int32, lessonID string, n int) *taskqueuev1.EnqueueTaskRequest {
	payload, _ := structpb.NewStruct(map[string]any{"n": n})
	return &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: key, TaskType: typ, Payload: payload, Priority: priority, LessonId: lessonID}
}

func (e *queueEnv) enqueue(ctx context.Context, req *taskqueuev1.EnqueueTaskRequest) *taskqueuev1.Task {
	e.t.Helper()
	resp, err := e.tasks.EnqueueTask(ctx, req)
	if err != nil {
		e.t.Fatalf("enqueue %s: %v", req.GetIdempotencyKey(), err)
	}
	return resp.GetTask()
}

func (e *queueEnv) lesson(ctx context.Context, project, name string, priority int32) *taskqueuev1.Lesson {
	e.t.Helper()
	resp, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: project, Name: name, Priority: priority})
	if err != nil {
		e.t.Fatalf("create lesson %s: %v", name, err)
	}
	return resp.GetLesson()
}

func (e *queueEnv) getTask(ctx context.Context, id string) *taskqueuev1.Task {
	e.t.Helper()
	resp, err := e.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: id})
	if err != nil {
		e.t.Fatalf("get task %s: %v", id, err)
	}
	return resp.GetTask()
}

func (e *queueEnv) getLesson(ctx context.Context, id string) *taskqueuev1.Lesson {
	e.t.Helper()
	resp, err := e.less.GetLesson(ctx, &taskqueuev1.GetLessonRequest{LessonId: id})
	if err != nil {
		e.t.Fatalf("get lesson %s: %v", id, err)
	}
	return resp.GetLesson()
}

// wantLesson checks a lesson's counters and progress.
func (e *queueEnv) wantLesson(ctx context.Context, id string, total, completed, dead int64) {
	e.t.Helper()
	l := e.getLesson(ctx, id)
	var pct float64
	if total > 0 {
		pct = float64(completed) * 100 / float64(total)
	}
	if l.GetTasksTotal() != total || l.GetTasksCompleted() != completed || l.GetTasksDead() != dead || l.GetProgressPercent() != pct {
		e.t.Fatalf("lesson %s: total/completed/dead/progress = %d/%d/%d/%.2f, want %d/%d/%d/%.2f",
			l.GetName(), l.GetTasksTotal(), l.GetTasksCompleted(), l.GetTasksDead(), l.GetProgressPercent(), total, completed, dead, pct)
	}
}

// makeRunnable moves a task's run_at to now so that a test need not wait
// out a retry backoff it has already checked.
func (e *queueEnv) makeRunnable(ctx context.Context, taskID string) {
	e.t.Helper()
	if _, err := e.db.Exec(ctx, `UPDATE taskqueue.tasks SET run_at = now() WHERE task_id = $1 AND state = 'pending'`, taskID); err != nil {
		e.t.Fatal(err)
	}
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantStatus checks an error's code and, for INVALID_ARGUMENT, that its
// BadRequest detail names field.
func wantStatus(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %s (%s), want %s", st.Code(), st.Message(), code)
	}
	if code != codes.InvalidArgument {
		return
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
			}
			t.Fatalf("BadRequest names %v, want %q (%s)", br.GetFieldViolations(), field, st.Message())
		}
	}
	t.Fatalf("no BadRequest detail naming %q in %s", field, st.Message())
}

// statusCode is err's gRPC code (OK for nil).
func statusCode(err error) codes.Code { return status.Code(err) }

// windowExcludingNow is a daily window two to three hours away from now.
func windowExcludingNow() *typev1.TimeWindow {
	now := time.Now().UTC()
	start := (now.Hour()*60 + now.Minute() + 120) % 1440
	end := start + 60
	if end > 1440 {
		end -= 1440
	}
	return &typev1.TimeWindow{StartMinute: int32(start), EndMinute: int32(end), TimeZone: "UTC"}
}

// windowIncludingNow is a daily window from an hour ago to an hour ahead.
func windowIncludingNow() *typev1.TimeWindow {
	now := time.Now().UTC()
	start := (now.Hour()*60 + now.Minute() + 1440 - 60) % 1440
	end := (start + 120) % 1440
	if end == 0 {
		end = 1440
	}
	return &typev1.TimeWindow{StartMinute: int32(start), EndMinute: int32(end), TimeZone: "UTC"}
}

// dbTaskState reads a task's state and attempt straight from the table.
func (e *queueEnv) dbTaskState(ctx context.Context, id string) (string, int) {
	e.t.Helper()
	var state string
	var attempt int
	if err := e.db.QueryRow(ctx, `SELECT state, attempt FROM taskqueue.tasks WHERE task_id = $1`, id).Scan(&state, &attempt); err != nil {
		e.t.Fatal(err)
	}
	return state, attempt
}

// tableDigest summarises every task and lesson row, so a test can check that
// a refused request changed nothing.
func (e *queueEnv) tableDigest(ctx context.Context) string {
	e.t.Helper()
	var tasks, lessons, affs string
	err := e.db.QueryRow(ctx, `SELECT
		coalesce((SELECT string_agg(concat_ws(',', task_id, idempotency_key, state, attempt, max_attempts, run_at, claimed_by_session_id, claim_expires_at, updated_at), ';' ORDER BY task_id) FROM taskqueue.tasks), ''),
		coalesce((SELECT string_agg(concat_ws(',', lesson_id, name, priority, tasks_total, tasks_completed, tasks_dead, updated_at), ';' ORDER BY lesson_id) FROM taskqueue.lessons), ''),
		coalesce((SELECT string_agg(concat_ws(',', session_name, lesson_id, score, updated_at), ';' ORDER BY session_name, lesson_id) FROM taskqueue.session_affinities), '')`).Scan(&tasks, &lessons, &affs)
	if err != nil {
		e.t.Fatal(err)
	}
	return tasks + "\n" + lessons + "\n" + affs
}

// joinErrs renders up to n errors.
func joinErrs(errs []error, n int) error {
	if len(errs) > n {
		errs = append(errs[:n:n], fmt.Errorf("… and %d more", len(errs)-n))
	}
	return errors.Join(errs...)
}

func keyOf(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }
