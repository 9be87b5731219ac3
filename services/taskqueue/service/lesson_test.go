package service_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestLessonProgressFollowsEveryTaskTransition checks tasks_total,
// tasks_completed, tasks_dead and progress_percent after each kind of
// transition: enqueue, complete, cancel (total drops), dead, RetryTask of a
// dead task and of a cancelled one.
func TestLessonProgressFollowsEveryTaskTransition(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	l := e.lesson(ctx, "progress", "fractions", 0).GetLessonId()
	other := e.lesson(ctx, "progress", "decimals", 0).GetLessonId()
	w := e.register(ctx, "w", agentOpts{maxTasks: 10})
	e.wantLesson(ctx, l, 0, 0, 0)

	ids := make([]string, 4)
	for i := range ids {
		ids[i] = e.enqueue(ctx, newTaskReq(keyOf("p", i), "work", int32(10-i), l, i)).GetTaskId()
	}
	e.enqueue(ctx, newTaskReq("elsewhere", "work", 0, other, 0))
	e.enqueue(ctx, newTaskReq("p-00000", "work", 0, l, 0)) // duplicate: counts nothing
	e.wantLesson(ctx, l, 4, 0, 0)

	// Claims do not move the counters; completions do.
	claims := e.mustClaim(ctx, w, 3) // ids[0..2], by priority
	e.wantLesson(ctx, l, 4, 0, 0)
	byID := map[string]*taskqueuev1.Claim{}
	for _, c := range claims {
		byID[c.GetTask().GetTaskId()] = c
	}
	if _, err := e.complete(ctx, w, byID[ids[0]]); err != nil {
		t.Fatal(err)
	}
	e.wantLesson(ctx, l, 4, 1, 0) // 25 %

	// Cancelling a pending task drops it from the total; a claimed one too.
	if _, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: ids[3], Reason: "not needed"}); err != nil {
		t.Fatal(err)
	}
	e.wantLesson(ctx, l, 3, 1, 0)
	ct, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: ids[2]})
	if err != nil || ct.GetTask().GetState() != taskqueuev1.TaskState_TASK_STATE_CANCELLED || ct.GetTask().GetClaimedBySessionId() != "" {
		t.Fatalf("cancel a claimed task: %+v, %v", ct.GetTask(), err)
	}
	e.wantLesson(ctx, l, 2, 1, 0) // 50 %
	// Its holder learns on its next call.
	_, err = e.complete(ctx, w, byID[ids[2]])
	wantStatus(t, err, codes.FailedPrecondition, "")

	// Dead: counted as dead, still in the total.
	if _, err := e.fail(ctx, w, byID[ids[1]], false); err != nil {
		t.Fatal(err)
	}
	e.wantLesson(ctx, l, 2, 1, 1)

	// RetryTask of the dead task: not dead any more; then completed.
	if _, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: ids[1]}); err != nil {
		t.Fatal(err)
	}
	e.wantLesson(ctx, l, 2, 1, 0)
	c := e.mustClaim(ctx, w, 1)[0]
	if c.GetTask().GetTaskId() != ids[1] {
		t.Fatalf("claimed %s, want the revived %s", c.GetTask().GetTaskId(), ids[1])
	}
	if _, err := e.complete(ctx, w, c); err != nil {
		t.Fatal(err)
	}
	e.wantLesson(ctx, l, 2, 2, 0) // 100 %

	// RetryTask of a cancelled task puts it back in the total.
	if _, err := e.tasks.RetryTask(ctx, &taskqueuev1.RetryTaskRequest{TaskId: ids[3]}); err != nil {
		t.Fatal(err)
	}
	e.wantLesson(ctx, l, 3, 2, 0)
	// The other lesson saw none of it.
	e.wantLesson(ctx, other, 1, 0, 0)
}

// TestUpdateLessonChangesOnlyTheMaskedFields: an update mask names the
// fields that change, an empty one changes them all; a new priority reaches
// the lesson's pending tasks; a name taken in the project is refused.
func TestUpdateLessonChangesOnlyTheMaskedFields(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	md, _ := structpb.NewStruct(map[string]any{"grade": 4.0})
	created, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "upd", Name: "orig", Objective: "learn", Priority: 3, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetLesson().GetLessonId()
	taskID := e.enqueue(ctx, newTaskReq("in-lesson", "work", 0, id, 0)).GetTaskId()

	upd := func(req *taskqueuev1.UpdateLessonRequest) *taskqueuev1.Lesson {
		t.Helper()
		req.LessonId = id
		resp, err := e.less.UpdateLesson(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.getLesson(ctx, id); got.GetName() != resp.GetLesson().GetName() || got.GetPriority() != resp.GetLesson().GetPriority() {
			t.Fatalf("GetLesson %+v disagrees with UpdateLesson's answer %+v", got, resp.GetLesson())
		}
		return resp.GetLesson()
	}
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

	got := upd(&taskqueuev1.UpdateLessonRequest{Objective: "learn more", Name: "ignored", Priority: 9, UpdateMask: mask("objective")})
	if got.GetObjective() != "learn more" || got.GetName() != "orig" || got.GetPriority() != 3 || got.GetMetadata().GetFields()["grade"].GetNumberValue() != 4 {
		t.Fatalf("objective-only update: %+v", got)
	}
	got = upd(&taskqueuev1.UpdateLessonRequest{Name: "renamed", Priority: 7, UpdateMask: mask("name", "priority")})
	if got.GetName() != "renamed" || got.GetPriority() != 7 || got.GetObjective() != "learn more" {
		t.Fatalf("name and priority update: %+v", got)
	}
	// The claim order reads the lesson's priority from its tasks.
	var lp int
	if err := e.db.QueryRow(ctx, `SELECT lesson_priority FROM taskqueue.tasks WHERE task_id = $1`, taskID).Scan(&lp); err != nil || lp != 7 {
		t.Fatalf("task's lesson_priority %d after the update (%v), want 7", lp, err)
	}
	md2, _ := structpb.NewStruct(map[string]any{"grade": 5.0})
	got = upd(&taskqueuev1.UpdateLessonRequest{Metadata: md2, UpdateMask: mask("metadata")})
	if got.GetMetadata().GetFields()["grade"].GetNumberValue() != 5 || got.GetName() != "renamed" {
		t.Fatalf("metadata update: %+v", got)
	}
	// An empty mask changes every field.
	got = upd(&taskqueuev1.UpdateLessonRequest{Name: "all", Objective: "", Priority: 0})
	if got.GetName() != "all" || got.GetObjective() != "" || got.GetPriority() != 0 || len(got.GetMetadata().GetFields()) != 0 {
		t.Fatalf("full update: %+v", got)
	}
	// Renaming onto another lesson's name in the project is refused.
	e.lesson(ctx, "upd", "taken", 0)
	_, err = e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: id, Name: "taken", UpdateMask: mask("name")})
	wantStatus(t, err, codes.AlreadyExists, "")
	_, err = e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: "00000000-0000-4000-8000-000000000000", Name: "x", UpdateMask: mask("name")})
	wantStatus(t, err, codes.NotFound, "")
}

// TestListLessonsPagesThroughEveryLessonOnce: pages of a project's lessons,
// newest first, hold each lesson once and no other project's.
func TestListLessonsPagesThroughEveryLessonOnce(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	const n = 7
	var created []string
	for i := range n {
		created = append(created, e.lesson(ctx, "paged", fmt.Sprintf("l%d", i), 0).GetLessonId())
	}
	e.lesson(ctx, "elsewhere", "other", 0)

	var got []string
	token, pages := "", 0
	for {
		resp, err := e.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{Project: "paged", PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, l := range resp.GetLessons() {
			if l.GetProject() != "paged" {
				t.Fatalf("listed a lesson of project %q", l.GetProject())
			}
			got = append(got, l.GetLessonId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if pages > n {
			t.Fatal("paging does not end")
		}
	}
	if pages != 3 || len(got) != n {
		t.Fatalf("%d lessons in %d pages, want %d in 3", len(got), pages, n)
	}
	// Newest first: the reverse of creation.
	for i := range got {
		if got[i] != created[n-1-i] {
			t.Fatalf("order %v, want the reverse of %v", got, created)
		}
	}
	all, err := e.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{})
	if err != nil || len(all.GetLessons()) != n+1 || all.GetNextPageToken() != "" {
		t.Fatalf("unfiltered list: %d lessons, next %q, %v", len(all.GetLessons()), all.GetNextPageToken(), err)
	}
}

// TestSessionAffinitySetListDelete: setting an affinity again replaces it;
// affinities list by session, by lesson or both, in pages; deleting one
// twice is NOT_FOUND.
func TestSessionAffinitySetListDelete(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	a := e.lesson(ctx, "aff", "a", 0).GetLessonId()
	b := e.lesson(ctx, "aff", "b", 0).GetLessonId()
	set := func(session, lesson string, score float64) *taskqueuev1.SessionAffinity {
		t.Helper()
		resp, err := e.less.SetSessionAffinity(ctx, &taskqueuev1.SetSessionAffinityRequest{SessionName: session, LessonId: lesson, Score: score, TimeWindow: windowIncludingNow()})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetAffinity()
	}
	list := func(req *taskqueuev1.ListSessionAffinitiesRequest) []string {
		t.Helper()
		var out []string
		for {
			resp, err := e.less.ListSessionAffinities(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, af := range resp.GetAffinities() {
				out = append(out, fmt.Sprintf("%s/%s/%g", af.GetSessionName(), af.GetLessonId(), af.GetScore()))
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				return out
			}
		}
	}

	first := set("alice", a, 10)
	if first.GetTimeWindow() == nil || first.GetCreatedAt() == nil {
		t.Fatalf("affinity as set: %+v", first)
	}
	set("alice", b, 20)
	set("bob", a, 30)
	replaced := set("alice", a, 40) // replaces, does not add
	if !replaced.GetCreatedAt().AsTime().Equal(first.GetCreatedAt().AsTime()) {
		t.Fatalf("replacing an affinity changed its created_at")
	}

	alice := list(&taskqueuev1.ListSessionAffinitiesRequest{SessionName: "alice", PageSize: 1})
	if len(alice) != 2 {
		t.Fatalf("alice's affinities: %v", alice)
	}
	for _, want := range []string{"alice/" + a + "/40", "alice/" + b + "/20"} {
		found := false
		for _, g := range alice {
			found = found || g == want
		}
		if !found {
			t.Fatalf("alice's affinities %v lack %s", alice, want)
		}
	}
	if byLesson := list(&taskqueuev1.ListSessionAffinitiesRequest{LessonId: a}); len(byLesson) != 2 {
		t.Fatalf("lesson a's affinities: %v", byLesson)
	}
	if both := list(&taskqueuev1.ListSessionAffinitiesRequest{SessionName: "bob", LessonId: a}); len(both) != 1 || both[0] != "bob/"+a+"/30" {
		t.Fatalf("bob's affinity for a: %v", both)
	}
	_, err := e.less.ListSessionAffinities(ctx, &taskqueuev1.ListSessionAffinitiesRequest{})
	wantStatus(t, err, codes.InvalidArgument, "session_name")

	if _, err := e.less.DeleteSessionAffinity(ctx, &taskqueuev1.DeleteSessionAffinityRequest{SessionName: "alice", LessonId: a}); err != nil {
		t.Fatal(err)
	}
	if got := list(&taskqueuev1.ListSessionAffinitiesRequest{SessionName: "alice"}); len(got) != 1 || got[0] != "alice/"+b+"/20" {
		t.Fatalf("after delete: %v", got)
	}
	_, err = e.less.DeleteSessionAffinity(ctx, &taskqueuev1.DeleteSessionAffinityRequest{SessionName: "alice", LessonId: a})
	wantStatus(t, err, codes.NotFound, "")
}
