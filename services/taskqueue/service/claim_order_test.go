package service_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// claimKeys claims one task at a time (without settling, so a session of
// enough capacity sees the queue's order) and returns their keys.
func (e *queueEnv) claimKeys(ctx context.Context, a *agent, n int) []string {
	e.t.Helper()
	var keys []string
	for range n {
		c := e.mustClaim(ctx, a, 1)[0]
		keys = append(keys, c.GetTask().GetIdempotencyKey())
	}
	return keys
}

func wantKeys(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: claimed %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: claimed %v, want %v", what, got, want)
		}
	}
}

// TestAffinityAndTimeWindowsSteerClaims: a session with affinity for lesson
// B gets B's tasks before A's even though A's are more urgent, and among
// several affinities the best score first; with the affinity's window set
// outside now it gets plain priority order again.
func TestAffinityAndTimeWindowsSteerClaims(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	a := e.lesson(ctx, "aff", "A", 10).GetLessonId()
	b := e.lesson(ctx, "aff", "B", 0).GetLessonId()
	c := e.lesson(ctx, "aff", "C", 0).GetLessonId()
	enqueueSet := func(round string) {
		e.enqueue(ctx, newTaskReq(round+"-a1", "work", 9, a, 0))
		e.enqueue(ctx, newTaskReq(round+"-a2", "work", 8, a, 0))
		e.enqueue(ctx, newTaskReq(round+"-b1", "work", 1, b, 0))
		e.enqueue(ctx, newTaskReq(round+"-b2", "work", 2, b, 0))
		e.enqueue(ctx, newTaskReq(round+"-c1", "work", 5, c, 0))
	}
	setAffinity := func(session, lesson string, score float64, w *typev1.TimeWindow) {
		t.Helper()
		if _, err := e.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: session, LessonId: lesson, Score: score, TimeWindow: w}); err != nil {
			t.Fatal(err)
		}
	}

	// Affinity for B (score 80) and C (score 20): B's tasks in priority
	// order, then C's, then the rest by priority.
	setAffinity("fan", b, 80, nil)
	setAffinity("fan", c, 20, windowIncludingNow())
	fan := e.register(ctx, "fan", agentOpts{maxTasks: 20})
	enqueueSet("r1")
	wantKeys(t, "with affinities", e.claimKeys(ctx, fan, 5), "r1-b2", "r1-b1", "r1-c1", "r1-a1", "r1-a2")

	// The same affinities outside their windows count for nothing.
	setAffinity("fan", b, 80, windowExcludingNow())
	setAffinity("fan", c, 20, windowExcludingNow())
	enqueueSet("r2")
	wantKeys(t, "affinities outside their windows", e.claimKeys(ctx, fan, 5), "r2-a1", "r2-a2", "r2-c1", "r2-b2", "r2-b1")

	// Another session's affinity does not steer this one.
	setAffinity("someone-else", b, 100, nil)
	if _, err := e.less.DeleteSessionAffinity(ctx, &taskqueuev1.DeleteSessionAffinityRequest{SessionName: "fan", LessonId: b}); err != nil {
		t.Fatal(err)
	}
	enqueueSet("r3")
	wantKeys(t, "without own affinity", e.claimKeys(ctx, fan, 5), "r3-a1", "r3-a2", "r3-c1", "r3-b2", "r3-b1")
}

// TestSessionOutsideItsTimeWindowsCannotClaim: a session registered with
// windows that exclude now is refused with FAILED_PRECONDITION and claims
// nothing; one whose window includes now claims.
func TestSessionOutsideItsTimeWindowsCannotClaim(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	id := e.enqueue(ctx, newTaskReq("windowed", "work", 0, "", 0)).GetTaskId()
	off := e.register(ctx, "night-shift", agentOpts{maxTasks: 1, windows: []*typev1.TimeWindow{windowExcludingNow()}})
	_, err := e.claim(ctx, off, 1, 0)
	wantStatus(t, err, codes.FailedPrecondition, "")
	_, err = e.claim(ctx, off, 1, time.Second)
	wantStatus(t, err, codes.FailedPrecondition, "")
	if st, attempt := e.dbTaskState(ctx, id); st != "pending" || attempt != 0 {
		t.Fatalf("task after refused claims: %s at attempt %d", st, attempt)
	}
	on := e.register(ctx, "day-shift", agentOpts{maxTasks: 1, windows: []*typev1.TimeWindow{windowExcludingNow(), windowIncludingNow()}})
	if got := e.mustClaim(ctx, on, 1)[0].GetTask().GetTaskId(); got != id {
		t.Fatalf("claimed %s", got)
	}
}

// TestClaimOrderByPriorityThenLessonPriorityThenAge: without affinities, a
// session receives tasks by priority, then the lesson's priority, then age.
func TestClaimOrderByPriorityThenLessonPriorityThenAge(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	high := e.lesson(ctx, "order", "high", 7).GetLessonId()
	low := e.lesson(ctx, "order", "low", 2).GetLessonId()
	// Enqueued one by one, so each is older than the next.
	for _, tk := range []struct {
		key      string
		priority int32
		lesson   string
	}{
		{"p3-low-old", 3, low},
		{"p0-none", 0, ""},
		{"p3-none", 3, ""},
		{"p3-high-old", 3, high},
		{"p9-low", 9, low},
		{"p3-low-new", 3, low},
		{"p3-high-new", 3, high},
		{"p10-none", 10, ""},
	} {
		e.enqueue(ctx, newTaskReq(tk.key, "work", tk.priority, tk.lesson, 0))
	}
	w := e.register(ctx, "orderly", agentOpts{maxTasks: 20})
	wantKeys(t, "claim order", e.claimKeys(ctx, w, 8),
		"p10-none", "p9-low", "p3-high-old", "p3-high-new", "p3-low-old", "p3-low-new", "p3-none", "p0-none")
}

// TestLessonPriorityChangeReachesClaimedTasks: a lesson's new priority must
// order not only its tasks pending when it changed, but also those claimed,
// dead or cancelled then, once they are pending again (a retryable failure,
// a reaped claim, RetryTask).
func TestLessonPriorityChangeReachesClaimedTasks(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{ReapInterval: 50 * time.Millisecond})
	ctx := testCtx(t, time.Minute)
	raised := e.lesson(ctx, "prio", "raised", 0).GetLessonId()
	steady := e.lesson(ctx, "prio", "steady", 5).GetLessonId()
	w := e.register(ctx, "w", agentOpts{maxTasks: 10})
	reaped := newTaskReq("reaped", "work", 1, raised, 0)
	reaped.ClaimTimeout = durationpb.New(time.Second)
	for _, r := range []*taskqueuev1.EnqueueTaskRequest{newTaskReq("failed", "work", 1, raised, 0), reaped, newTaskReq("dead", "work", 1, raised, 0)} {
		e.enqueue(ctx, r)
	}
	held := map[string]*taskqueuev1.Claim{}
	for _, c := range e.mustClaim(ctx, w, 3) {
		held[c.GetTask().GetIdempotencyKey()] = c
	}
	cancelled := e.enqueue(ctx, newTaskReq("cancelled", "work", 1, raised, 0)).GetTaskId()
	if _, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: cancelled}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fail(ctx, w, held["dead"], false); err != nil {
		t.Fatal(err)
	}
	e.enqueue(ctx, newTaskReq("steady-task", "work", 1, steady, 0))

	if _, err := e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: raised, Priority: 9, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"priority"}}}); err != nil {
		t.Fatal(err)
	}
	// Back to pending, each its own way.
	if _, err := e.fail(ctx, w, held["failed"], true); err != nil {
		t.Fatal(err)
	}
	e.makeRunnable(ctx, held["failed"].GetTask().GetTaskId())
	eventually(t, 10*time.Second, "claim reaped", func() (bool, error) {
		st, _ := e.dbTaskState(ctx, held["reaped"].GetTask().GetTaskId())
		return st == "pending", nil
	})
	for _, id := range []string{held["dead"].GetTask().GetTaskId(), cancelled} {
		if _, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Same task priority; the raised lesson (9) now outranks steady (5),
	// though steady's task is older by run_at.
	got := e.claimKeys(ctx, w, 5)
	if got[4] != "steady-task" {
		t.Fatalf("after raising the lesson's priority: claimed %v, want steady-task last", got)
	}
}

// TestConcurrentClaimsOfOneSessionRespectItsCapacity: many ClaimTasks calls
// of one session at once share its max_concurrent_tasks between them, and
// task_types restrict what is claimed.
func TestConcurrentClaimsOfOneSessionRespectItsCapacity(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	for i := range 20 {
		typ := "wanted"
		if i%2 == 1 {
			typ = "unwanted"
		}
		e.enqueue(ctx, newTaskReq(keyOf("cap", i), typ, 0, "", i))
	}
	const capacity = 3
	w := e.register(ctx, "small", agentOpts{maxTasks: capacity})
	results := make(chan []*taskqueuev1.Claim, 8)
	for range 8 {
		go func() {
			resp, err := e.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: w.id, SessionToken: w.token, MaxTasks: capacity, TaskTypes: []string{"wanted"}})
			if err != nil {
				t.Errorf("claim: %v", err)
			}
			results <- resp.GetClaims()
		}()
	}
	var got []*taskqueuev1.Claim
	for range 8 {
		got = append(got, <-results...)
	}
	if len(got) != capacity {
		t.Fatalf("8 concurrent claims of a session with capacity %d got %d tasks", capacity, len(got))
	}
	for _, c := range got {
		if c.GetTask().GetTaskType() != "wanted" {
			t.Fatalf("claimed a task of type %s", c.GetTask().GetTaskType())
		}
	}
	// Full: nothing more until a claim is settled, even with a wait.
	if claims, err := e.claim(ctx, w, 1, 100*time.Millisecond); err != nil || len(claims) != 0 {
		t.Fatalf("claim beyond capacity: %d claims, %v", len(claims), err)
	}
	if _, err := e.complete(ctx, w, got[0]); err != nil {
		t.Fatal(err)
	}
	if claims := e.mustClaim(ctx, w, 1); len(claims) != 1 {
		t.Fatal("no room after a completion")
	}
	var held int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE state = 'claimed' AND claimed_by_session_id = $1`, w.id).Scan(&held); err != nil || held != capacity {
		t.Fatalf("session holds %d claims (%v), want %d", held, err, capacity)
	}
}
