package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gaia-platform/gaia/internal/grpcserver"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// enqueueLarge enqueues n tasks of type typ, each with a payload of about
// size bytes.
func (e *queueEnv) enqueueLarge(ctx context.Context, prefix, typ string, n, size int) {
	e.t.Helper()
	blob := strings.Repeat("x", size)
	for i := range n {
		payload, err := structpb.NewStruct(map[string]any{"blob": blob, "i": i})
		if err != nil {
			e.t.Fatal(err)
		}
		e.enqueue(ctx, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: keyOf(prefix, i), TaskType: typ, Payload: payload})
	}
}

// ClaimTasks with max_tasks 100 over 250 KB tasks once claimed them all for
// a 25 MB reply: the client got RESOURCE_EXHAUSTED (over its 4 MiB) and the
// claims sat invisible until their lease ran out, each costing an attempt.
// The claim now takes only what its reply carries and says more is ready;
// every task it leaves stays pending with no attempt spent.
func TestClaimTasksOverLargeTasksClaimsOnlyWhatTheReplyCarries(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	const n, size = 20, 250_000 // 5 MB in all, over gRPC's 4 MiB
	e.enqueueLarge(ctx, "large", "large", n, size)
	a := e.register(ctx, "big-claimer", agentOpts{maxTasks: 100, beat: time.Second})

	resp, err := e.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: a.id, SessionToken: a.token, MaxTasks: 100})
	if err != nil {
		t.Fatalf("claim 100 tasks of 250 KB: %v", err)
	}
	got := len(resp.GetClaims())
	if got == 0 || got >= n || !resp.GetMoreAvailable() {
		t.Fatalf("claimed %d of %d tasks, more_available %v; want a part of them and more_available", got, n, resp.GetMoreAvailable())
	}
	if sz := proto.Size(resp); sz > grpcserver.DefaultMaxReplyBytes {
		t.Errorf("reply is %d bytes, over the %d budget", sz, grpcserver.DefaultMaxReplyBytes)
	}
	var claimed, pending int
	rows, err := e.db.Query(ctx, `SELECT state, attempt FROM taskqueue.tasks`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var state string
		var attempt int
		if err := rows.Scan(&state, &attempt); err != nil {
			t.Fatal(err)
		}
		switch {
		case state == "claimed" && attempt == 1:
			claimed++
		case state == "pending" && attempt == 0:
			pending++
		default:
			t.Errorf("a task is %s at attempt %d", state, attempt)
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if claimed != got || pending != n-got {
		t.Errorf("database holds %d claimed and %d pending; the reply carried %d claims of %d", claimed, pending, got, n)
	}

	// Claiming again drains the rest, each reply within the budget.
	total := got
	for total < n {
		resp, err := e.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: a.id, SessionToken: a.token, MaxTasks: 100})
		if err != nil || len(resp.GetClaims()) == 0 {
			t.Fatalf("claim again after %d: %d claims, %v", total, len(resp.GetClaims()), err)
		}
		total += len(resp.GetClaims())
		if total == n && resp.GetMoreAvailable() {
			t.Errorf("the last claim says more_available with none left")
		}
	}
}

// A task larger than the whole reply budget is still claimed, alone.
func TestClaimTasksClaimsOneTaskLargerThanTheReplyBudget(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{MaxReplyBytes: 512 << 10})
	ctx := testCtx(t, time.Minute)
	// A payload of small numbers grows about fivefold as a protobuf Struct:
	// 255 KB of JSON at most, over 900 KB on the wire.
	nums := make([]any, 85_000)
	for i := range nums {
		nums[i] = 1
	}
	for i := range 2 {
		payload, err := structpb.NewStruct(map[string]any{"nums": nums})
		if err != nil {
			t.Fatal(err)
		}
		e.enqueue(ctx, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: fmt.Sprintf("huge-%d", i), TaskType: "huge", Payload: payload})
	}
	a := e.register(ctx, "huge-claimer", agentOpts{maxTasks: 10, beat: time.Second})
	for i := range 2 {
		resp, err := e.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: a.id, SessionToken: a.token, MaxTasks: 10})
		if err != nil || len(resp.GetClaims()) != 1 {
			t.Fatalf("claim %d: %d claims, %v; want one", i, len(resp.GetClaims()), err)
		}
		if want := i == 0; resp.GetMoreAvailable() != want {
			t.Errorf("claim %d: more_available %v, want %v", i, resp.GetMoreAvailable(), want)
		}
	}
}

// ListTasks built a 30 MB reply for page_size 1,000 (which allows 256 MB)
// and the client refused it. A page now ends where the reply's byte budget
// does, with a next_page_token, and the pages together hold every task.
func TestListTasksOverLargeTasksEndsThePageAtTheReplyBudget(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	const n, size = 20, 250_000
	e.enqueueLarge(ctx, "listed", "listed", n, size)

	seen := map[string]bool{}
	tok := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("still paging after %d pages", pages)
		}
		resp, err := e.tasks.ListTasks(ctx, &taskqueuev1.ListTasksRequest{PageSize: 1000, PageToken: tok})
		if err != nil {
			t.Fatalf("list page %d: %v", pages, err)
		}
		if sz := proto.Size(resp); sz > grpcserver.DefaultMaxReplyBytes {
			t.Errorf("page %d is %d bytes, over the %d budget", pages, sz, grpcserver.DefaultMaxReplyBytes)
		}
		if pages == 0 && (len(resp.GetTasks()) >= n || resp.GetNextPageToken() == "") {
			t.Errorf("first page holds %d of %d tasks, next_page_token %q; want a part and a token", len(resp.GetTasks()), n, resp.GetNextPageToken())
		}
		for _, tk := range resp.GetTasks() {
			if seen[tk.GetTaskId()] {
				t.Errorf("task %s listed twice", tk.GetIdempotencyKey())
			}
			seen[tk.GetTaskId()] = true
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(seen) != n {
		t.Errorf("the pages hold %d tasks, want %d", len(seen), n)
	}
}

// ListLessons pages by bytes as well: 70 lessons with 60 KB of metadata each
// are more than a client takes in one reply.
func TestListLessonsOverLargeMetadataEndsThePageAtTheReplyBudget(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	const n = 70
	md, err := structpb.NewStruct(map[string]any{"notes": strings.Repeat("n", 60_000)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := e.less.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "big", Name: keyOf("lesson", i), Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	seen, tok := 0, ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("still paging after %d pages", pages)
		}
		resp, err := e.less.ListLessons(ctx, &taskqueuev1.ListLessonsRequest{PageSize: 1000, PageToken: tok})
		if err != nil {
			t.Fatalf("list page %d: %v", pages, err)
		}
		seen += len(resp.GetLessons())
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if seen != n {
		t.Errorf("the pages hold %d lessons, want %d", seen, n)
	}
}

// CompleteTasks answered every completed task with its payload: 20 tasks of
// 250 KB made a 5 MB reply that the client refused after the completions
// had committed. The reply now fits, the last tasks without their payload.
func TestCompleteTasksOverLargeTasksAnswersWithinTheReplyBudget(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	const n, size = 20, 250_000
	e.enqueueLarge(ctx, "done", "done", n, size)
	a := e.register(ctx, "completer", agentOpts{maxTasks: 100, beat: time.Second})
	var claims []*taskqueuev1.CompletedClaim
	for len(claims) < n {
		got, err := e.claim(ctx, a, 5, 0)
		if err != nil || len(got) == 0 {
			t.Fatalf("claim after %d: %d claims, %v", len(claims), len(got), err)
		}
		for _, c := range got {
			claims = append(claims, &taskqueuev1.CompletedClaim{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken()})
		}
	}
	resp, err := e.tasks.CompleteTasks(ctx, &taskqueuev1.CompleteTasksRequest{SessionId: a.id, SessionToken: a.token, Claims: claims})
	if err != nil {
		t.Fatalf("complete %d tasks of 250 KB: %v", n, err)
	}
	if sz := proto.Size(resp); sz > grpcserver.DefaultMaxReplyBytes {
		t.Errorf("reply is %d bytes, over the %d budget", sz, grpcserver.DefaultMaxReplyBytes)
	}
	withPayload := 0
	for i, r := range resp.GetResults() {
		if r.GetCode() != 0 || r.GetTask().GetState() != taskqueuev1.TaskState_TASK_STATE_COMPLETED {
			t.Errorf("result %d: code %d, state %v", i, r.GetCode(), r.GetTask().GetState())
		}
		if r.GetTask().GetPayload() != nil {
			withPayload++
		}
	}
	if withPayload == 0 || withPayload == n {
		t.Errorf("%d of %d tasks came with their payload; want the first ones only", withPayload, n)
	}
}

// EnqueueTasks of keys already taken answers with the existing tasks: 20
// small requests for 250 KB tasks made a 5 MB reply. It now fits.
func TestEnqueueTasksOfLargeDuplicatesAnswersWithinTheReplyBudget(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	const n, size = 20, 250_000
	e.enqueueLarge(ctx, "dup", "dup", n, size)
	req := &taskqueuev1.EnqueueTasksRequest{}
	for i := range n {
		req.Tasks = append(req.Tasks, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: keyOf("dup", i), TaskType: "dup"})
	}
	resp, err := e.tasks.EnqueueTasks(ctx, req)
	if err != nil {
		t.Fatalf("enqueue %d duplicates of 250 KB tasks: %v", n, err)
	}
	if sz := proto.Size(resp); sz > grpcserver.DefaultMaxReplyBytes {
		t.Errorf("reply is %d bytes, over the %d budget", sz, grpcserver.DefaultMaxReplyBytes)
	}
	for i, r := range resp.GetResults() {
		if !r.GetDuplicate() || r.GetTask().GetIdempotencyKey() != keyOf("dup", i) {
			t.Errorf("result %d: duplicate %v, key %q", i, r.GetDuplicate(), r.GetTask().GetIdempotencyKey())
		}
	}
}
