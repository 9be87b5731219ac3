package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

type scopedClients struct {
	tasks taskqueuev1.TaskServiceClient
	less  taskqueuev1.LessonServiceClient
}

func (e *queueEnv) dialAs(token string) scopedClients {
	e.t.Helper()
	conn, err := grpcclient.Dial(e.q.Addr, grpcclient.WithBearer(token))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return scopedClients{taskqueuev1.NewTaskServiceClient(conn), taskqueuev1.NewLessonServiceClient(conn)}
}

// listTaskIDs pages through ListTasks one task a page, so that a filter
// applied after paging would show as empty pages or a short list.
func listTaskIDs(ctx context.Context, t *testing.T, c taskqueuev1.TaskServiceClient, req *taskqueuev1.ListTasksRequest) []string {
	t.Helper()
	var ids []string
	req.PageSize = 1
	for {
		resp, err := c.ListTasks(ctx, req)
		if err != nil {
			t.Fatalf("ListTasks: %v", err)
		}
		if len(resp.GetTasks()) == 0 && resp.GetNextPageToken() != "" {
			t.Fatalf("ListTasks returned an empty page with a next page")
		}
		for _, tk := range resp.GetTasks() {
			ids = append(ids, tk.GetTaskId())
		}
		if resp.GetNextPageToken() == "" {
			return ids
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func sameSet(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	m := map[string]bool{}
	for _, g := range got {
		m[g] = true
	}
	for _, w := range want {
		if !m[w] {
			return false
		}
	}
	return true
}

// An operator credential limited to projects reaches only its projects'
// lessons, tasks and affinities: by id another project's look missing
// (NOT_FOUND, the same error as a made-up id), lists leave them out (in
// SQL, before paging), lessonless tasks are for unscoped operators and
// admins only. Admins, unscoped operators and claiming sessions see
// everything as before.
func TestProjectScopedOperator(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, 2*time.Minute)
	keys := e.coord.Keys
	scoped := e.dialAs(keys.Token(t, auth.Spec{Role: auth.RoleOperator, Name: "alpha-ops", Projects: []string{"alpha"}, TTL: time.Hour}))
	unscoped := e.dialAs(keys.Token(t, auth.Spec{Role: auth.RoleOperator, Name: "ops", TTL: time.Hour}))

	la := e.lesson(ctx, "alpha", "a", 0)
	lb := e.lesson(ctx, "beta", "b", 0)
	ta1 := e.enqueue(ctx, newTaskReq("a1", "t", 0, la.GetLessonId(), 1))
	ta2 := e.enqueue(ctx, newTaskReq("a2", "t", 0, la.GetLessonId(), 2))
	tb := e.enqueue(ctx, newTaskReq("b1", "t", 0, lb.GetLessonId(), 3))
	tn := e.enqueue(ctx, newTaskReq("n1", "t", 0, "", 4))
	const madeUp = "00000000-0000-4000-8000-000000000001"

	// GetTask: own project found; another project's and lessonless tasks
	// answer exactly as a made-up id does.
	if _, err := scoped.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: ta1.GetTaskId()}); err != nil {
		t.Fatalf("GetTask in its project: %v", err)
	}
	_, missing := scoped.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: madeUp})
	wantStatus(t, missing, codes.NotFound, "")
	for name, req := range map[string]*taskqueuev1.GetTaskRequest{
		"other project": {TaskId: tb.GetTaskId()},
		"no lesson":     {TaskId: tn.GetTaskId()},
		"other by key":  {IdempotencyKey: "b1"},
	} {
		_, err := scoped.tasks.GetTask(ctx, req)
		if status.Code(err) != codes.NotFound || status.Convert(err).Message() != status.Convert(missing).Message() {
			t.Fatalf("GetTask %s: %v, want the NOT_FOUND of a missing task (%v)", name, err, missing)
		}
	}

	// CancelTask / RetryTask of another project: NOT_FOUND, task untouched.
	_, err := scoped.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: tb.GetTaskId()})
	wantStatus(t, err, codes.NotFound, "")
	_, err = scoped.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: tn.GetTaskId()})
	wantStatus(t, err, codes.NotFound, "")
	if st, _ := e.dbTaskState(ctx, tb.GetTaskId()); st != "pending" {
		t.Fatalf("another project's task is %s after a refused cancel, want pending", st)
	}
	if _, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: tb.GetTaskId()}); err != nil {
		t.Fatalf("admin CancelTask: %v", err)
	}
	_, err = scoped.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: tb.GetTaskId()})
	wantStatus(t, err, codes.NotFound, "")
	if st, _ := e.dbTaskState(ctx, tb.GetTaskId()); st != "cancelled" {
		t.Fatalf("another project's task is %s after a refused retry, want cancelled", st)
	}
	if _, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: tb.GetTaskId()}); err != nil {
		t.Fatalf("admin RetryTask: %v", err)
	}
	if _, err := scoped.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: ta2.GetTaskId()}); err != nil {
		t.Fatalf("CancelTask in its project: %v", err)
	}
	if _, err := scoped.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: ta2.GetTaskId()}); err != nil {
		t.Fatalf("RetryTask in its project: %v", err)
	}

	// EnqueueTask(s): own lesson yes; another project's lesson as an unknown
	// one; lessonless refused; a mixed batch inserts nothing; a key taken in
	// another project is refused without its task.
	if _, err := scoped.tasks.EnqueueTask(ctx, newTaskReq("a3", "t", 0, la.GetLessonId(), 5)); err != nil {
		t.Fatalf("EnqueueTask in its project: %v", err)
	}
	_, err = scoped.tasks.EnqueueTask(ctx, newTaskReq("b2", "t", 0, lb.GetLessonId(), 6))
	wantStatus(t, err, codes.InvalidArgument, "lesson_id")
	_, err = scoped.tasks.EnqueueTask(ctx, newTaskReq("n2", "t", 0, "", 7))
	wantStatus(t, err, codes.PermissionDenied, "")
	_, err = scoped.tasks.EnqueueTasks(ctx, &taskqueuev1.EnqueueTasksRequest{Tasks: []*taskqueuev1.EnqueueTaskRequest{
		newTaskReq("a4", "t", 0, la.GetLessonId(), 8), newTaskReq("b3", "t", 0, lb.GetLessonId(), 9)}})
	wantStatus(t, err, codes.InvalidArgument, "lesson_id")
	_, err = scoped.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{IdempotencyKey: "a4"})
	wantStatus(t, err, codes.NotFound, "")
	_, err = scoped.tasks.EnqueueTask(ctx, newTaskReq("b1", "t", 0, la.GetLessonId(), 10))
	wantStatus(t, err, codes.AlreadyExists, "")
	if strings.Contains(err.Error(), tb.GetTaskId()) {
		t.Fatalf("the refusal of a taken key names the other project's task: %v", err)
	}

	// ListTasks: its projects only, paged in SQL; another lesson empty.
	a3, err := scoped.tasks.GetTask(ctx, &taskqueuev1.GetTaskRequest{IdempotencyKey: "a3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := listTaskIDs(ctx, t, scoped.tasks, &taskqueuev1.ListTasksRequest{}); !sameSet(got, ta1.GetTaskId(), ta2.GetTaskId(), a3.GetTask().GetTaskId()) {
		t.Fatalf("scoped ListTasks = %v, want the three tasks of project alpha", got)
	}
	if got := listTaskIDs(ctx, t, scoped.tasks, &taskqueuev1.ListTasksRequest{LessonId: lb.GetLessonId()}); len(got) != 0 {
		t.Fatalf("scoped ListTasks of another project's lesson = %v, want none", got)
	}
	all := []string{ta1.GetTaskId(), ta2.GetTaskId(), a3.GetTask().GetTaskId(), tb.GetTaskId(), tn.GetTaskId()}
	for name, c := range map[string]taskqueuev1.TaskServiceClient{"admin": e.tasks, "unscoped operator": unscoped.tasks} {
		if got := listTaskIDs(ctx, t, c, &taskqueuev1.ListTasksRequest{}); !sameSet(got, all...) {
			t.Fatalf("%s ListTasks = %v, want all five tasks", name, got)
		}
		for _, id := range []string{tb.GetTaskId(), tn.GetTaskId()} {
			if _, err := c.GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: id}); err != nil {
				t.Fatalf("%s GetTask %s: %v", name, id, err)
			}
		}
	}
	if _, err := unscoped.tasks.EnqueueTask(ctx, newTaskReq("n3", "t", 0, "", 11)); err != nil {
		t.Fatalf("unscoped operator enqueues a lessonless task: %v", err)
	}

	// Lessons: another project's by id is missing; lists filtered; naming
	// another project is PERMISSION_DENIED naming it.
	_, err = scoped.less.GetLesson(ctx, &taskqueuev1.GetLessonRequest{LessonId: lb.GetLessonId()})
	wantStatus(t, err, codes.NotFound, "")
	_, err = scoped.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: lb.GetLessonId(), Priority: 5, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"priority"}}})
	wantStatus(t, err, codes.NotFound, "")
	if got := e.getLesson(ctx, lb.GetLessonId()).GetPriority(); got != 0 {
		t.Fatalf("another project's lesson priority = %d after a refused update", got)
	}
	if _, err := scoped.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: la.GetLessonId(), Priority: 5, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"priority"}}}); err != nil {
		t.Fatalf("UpdateLesson in its project: %v", err)
	}
	ls, err := scoped.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{})
	if err != nil || len(ls.GetLessons()) != 1 || ls.GetLessons()[0].GetLessonId() != la.GetLessonId() {
		t.Fatalf("scoped ListLessons = %v, %v; want lesson a only", ls.GetLessons(), err)
	}
	_, err = scoped.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{Project: "beta"})
	wantStatus(t, err, codes.PermissionDenied, "")
	if !strings.Contains(status.Convert(err).Message(), `"beta"`) {
		t.Fatalf("the refusal does not name the project: %v", err)
	}
	if ls, err := unscoped.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{}); err != nil || len(ls.GetLessons()) != 2 {
		t.Fatalf("unscoped ListLessons = %v, %v; want both lessons", ls.GetLessons(), err)
	}

	// Affinities.
	if _, err := scoped.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: "w", LessonId: la.GetLessonId(), Score: 1}); err != nil {
		t.Fatalf("SetSessionAffinity in its project: %v", err)
	}
	_, err = scoped.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: "w", LessonId: lb.GetLessonId(), Score: 1})
	wantStatus(t, err, codes.NotFound, "")
	if _, err := e.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: "w", LessonId: lb.GetLessonId(), Score: 1}); err != nil {
		t.Fatalf("admin SetSessionAffinity: %v", err)
	}
	af, err := scoped.less.ListSessionAffinities(ctx, &taskqueuev1.ListSessionAffinitiesRequest{SessionName: "w"})
	if err != nil || len(af.GetAffinities()) != 1 || af.GetAffinities()[0].GetLessonId() != la.GetLessonId() {
		t.Fatalf("scoped ListSessionAffinities = %v, %v; want lesson a's only", af.GetAffinities(), err)
	}
	_, err = scoped.less.DeleteSessionAffinity(ctx, &taskqueuev1.DeleteSessionAffinityRequest{SessionName: "w", LessonId: lb.GetLessonId()})
	wantStatus(t, err, codes.NotFound, "")
	if af, err := e.less.ListSessionAffinities(ctx, &taskqueuev1.ListSessionAffinitiesRequest{SessionName: "w"}); err != nil || len(af.GetAffinities()) != 2 {
		t.Fatalf("admin ListSessionAffinities = %v, %v; want both (the refused delete kept b's)", af.GetAffinities(), err)
	}
	if _, err := scoped.less.DeleteSessionAffinity(ctx, &taskqueuev1.DeleteSessionAffinityRequest{SessionName: "w", LessonId: la.GetLessonId()}); err != nil {
		t.Fatalf("DeleteSessionAffinity in its project: %v", err)
	}

	// A session claims every project's tasks and lessonless ones, as before
	// (no bearer credential: it proves itself with its session token).
	sess := e.dialAs("")
	a := e.register(ctx, "w", agentOpts{maxTasks: 10})
	claimed := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(claimed) < 6 && time.Now().Before(deadline) {
		resp, err := sess.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: a.id, SessionToken: a.token, MaxTasks: 10, Wait: durationpb.New(time.Second)})
		if err != nil {
			t.Fatalf("ClaimTasks: %v", err)
		}
		for _, c := range resp.GetClaims() {
			claimed[c.GetTask().GetTaskId()] = true
		}
	}
	if !claimed[tb.GetTaskId()] || !claimed[tn.GetTaskId()] || len(claimed) != 6 {
		t.Fatalf("the session claimed %d tasks (%v), want all six, beta's and the lessonless ones included", len(claimed), claimed)
	}
}
