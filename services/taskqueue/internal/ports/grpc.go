// Package ports is the task queue's gRPC surface: handlers validate requests,
// convert between protobuf and the domain, call one use case and return its
// errors for the shared interceptor to map. No SQL and no business rules here.
package ports

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/reqfield"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/app"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Servers holds the task queue's two gRPC services.
type Servers struct {
	Queue *app.Queue
	// MaxReplyBytes bounds every reply (GRPC_MAX_REPLY_BYTES); claims and
	// list pages stop short of it. 0 is grpcserver.DefaultMaxReplyBytes.
	MaxReplyBytes int
}

// replyBudget is the byte budget of one reply.
func (p *Servers) replyBudget() *grpcserver.ReplyBudget {
	return grpcserver.NewReplyBudget(p.MaxReplyBytes)
}

// fitTasks keeps a batch's reply within its budget once the work is done:
// every task is sent, and those whose payload and result would pass the
// budget go without them (GetTask has them). A batch of 1,000 completions
// whose tasks carry 256 KiB payloads would otherwise answer 256 MB, after
// committing.
func (p *Servers) fitTasks(tasks []*taskqueuev1.Task) {
	budget := p.replyBudget()
	bare := make([]int, len(tasks))
	for i, t := range tasks {
		if t == nil {
			continue
		}
		b := proto.Clone(t).(*taskqueuev1.Task)
		b.Payload, b.Result = nil, nil
		bare[i] = proto.Size(b)
		// Room for the bare task, its wrapper and their lengths, sent
		// whatever else fits.
		budget.Reserve(bare[i] + 16)
	}
	for i, t := range tasks {
		if t != nil && !budget.AddBytes(proto.Size(t)-bare[i]) {
			t.Payload, t.Result = nil, nil
		}
	}
}

// Register adds both services to s.
func (p *Servers) Register(s *grpc.Server) {
	taskqueuev1.RegisterTaskServiceServer(s, &taskServer{Servers: p})
	taskqueuev1.RegisterLessonServiceServer(s, &lessonServer{Servers: p})
}

type taskServer struct {
	taskqueuev1.UnimplementedTaskServiceServer
	*Servers
}

func (s *taskServer) EnqueueTask(ctx context.Context, req *taskqueuev1.EnqueueTaskRequest) (*taskqueuev1.EnqueueTaskResponse, error) {
	t, err := newTask("", req)
	if err != nil {
		return nil, err
	}
	out, err := s.Queue.Enqueue(ctx, []task.NewTask{t})
	if err != nil {
		return nil, err
	}
	return enqueuedToProto(out[0])
}

func (s *taskServer) EnqueueTasks(ctx context.Context, req *taskqueuev1.EnqueueTasksRequest) (*taskqueuev1.EnqueueTasksResponse, error) {
	n := len(req.GetTasks())
	if n == 0 || n > maxBatch {
		return nil, domainerr.Invalid("tasks", "must hold 1 to 1000 tasks")
	}
	tasks := make([]task.NewTask, n)
	for i, r := range req.GetTasks() {
		t, err := newTask(indexed("tasks", i), r)
		if err != nil {
			return nil, err
		}
		tasks[i] = t
	}
	out, err := s.Queue.Enqueue(ctx, tasks)
	if err != nil {
		return nil, err
	}
	resp := &taskqueuev1.EnqueueTasksResponse{Results: make([]*taskqueuev1.EnqueueTaskResponse, n)}
	sent := make([]*taskqueuev1.Task, n)
	for i, e := range out {
		if resp.Results[i], err = enqueuedToProto(e); err != nil {
			return nil, err
		}
		sent[i] = resp.Results[i].GetTask()
	}
	s.fitTasks(sent)
	return resp, nil
}

func (s *taskServer) ClaimTasks(ctx context.Context, req *taskqueuev1.ClaimTasksRequest) (*taskqueuev1.ClaimTasksResponse, error) {
	if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
		return nil, err
	}
	n := int(req.GetMaxTasks())
	if n == 0 {
		n = 1
	}
	if n < 1 || n > maxClaim {
		return nil, domainerr.Invalid("max_tasks", "must be between 1 and 100")
	}
	for i, t := range req.GetTaskTypes() {
		if err := validateType(indexed("task_types", i), t); err != nil {
			return nil, err
		}
	}
	wait, err := reqfield.Duration("wait", req.GetWait(), 0, 0, maxWait)
	if err != nil {
		return nil, err
	}
	// The budget is kept inside the claim, where a task that would not fit
	// is left pending: one claimed and then dropped from the reply would sit
	// invisible until its lease ran out, an attempt spent.
	budget := s.replyBudget()
	claims, more, err := s.Queue.Claim(ctx, app.ClaimInput{SessionID: req.GetSessionId(), Token: req.GetSessionToken(), Types: req.GetTaskTypes(), Max: n, Wait: wait,
		MaxBytes: budget.Left(), Size: claimSize})
	if err != nil {
		return nil, err
	}
	resp := &taskqueuev1.ClaimTasksResponse{Claims: make([]*taskqueuev1.Claim, 0, len(claims)), MoreAvailable: more}
	for _, c := range claims {
		pc, err := claimToProto(c)
		if err != nil {
			return nil, err
		}
		resp.Claims = append(resp.Claims, pc)
	}
	return resp, nil
}

func claimToProto(c task.Claim) (*taskqueuev1.Claim, error) {
	pt, err := taskToProto(c.Task)
	if err != nil {
		return nil, err
	}
	return &taskqueuev1.Claim{Task: pt, ClaimToken: c.Token.String(), LeaseExpiresAt: timestamppb.New(c.Task.ClaimExpiresAt)}, nil
}

// claimSize is what a claim adds to a ClaimTasksResponse. A task whose
// stored JSON does not convert is measured by its JSON, and fails the reply
// later as it always would.
func claimSize(c task.Claim) int {
	pc, err := claimToProto(c)
	if err != nil {
		return grpcserver.ElementSize(len(c.Task.Payload) + len(c.Task.Result))
	}
	return grpcserver.ElementSize(proto.Size(pc))
}

// claimRef validates the fields every call about a claim carries.
func claimRef(taskID, claimToken, sessionID, sessionToken string) (task.ClaimToken, error) {
	if err := validateTaskID("task_id", taskID); err != nil {
		return task.ClaimToken{}, err
	}
	if claimToken == "" {
		return task.ClaimToken{}, domainerr.Invalid("claim_token", "must not be empty")
	}
	if err := reqfield.SessionRef(sessionID, sessionToken); err != nil {
		return task.ClaimToken{}, err
	}
	return task.ParseClaimToken(taskID, claimToken)
}

func (s *taskServer) ExtendClaim(ctx context.Context, req *taskqueuev1.ExtendClaimRequest) (*taskqueuev1.ExtendClaimResponse, error) {
	tok, err := claimRef(req.GetTaskId(), req.GetClaimToken(), req.GetSessionId(), req.GetSessionToken())
	if err != nil {
		return nil, err
	}
	d, err := reqfield.Duration("extension", req.GetExtension(), 0, time.Second, maxClaimTimeout)
	if err != nil {
		return nil, err
	}
	until, err := s.Queue.ExtendClaim(ctx, tok, req.GetSessionId(), req.GetSessionToken(), d)
	if err != nil {
		return nil, err
	}
	return &taskqueuev1.ExtendClaimResponse{LeaseExpiresAt: timestamppb.New(until)}, nil
}

func (s *taskServer) CompleteTask(ctx context.Context, req *taskqueuev1.CompleteTaskRequest) (*taskqueuev1.CompleteTaskResponse, error) {
	tok, err := claimRef(req.GetTaskId(), req.GetClaimToken(), req.GetSessionId(), req.GetSessionToken())
	if err != nil {
		return nil, err
	}
	result, err := structJSON("result", req.GetResult(), maxPayload)
	if err != nil {
		return nil, err
	}
	t, err := s.Queue.Complete(ctx, tok, req.GetSessionId(), req.GetSessionToken(), result)
	if err != nil {
		return nil, err
	}
	pt, err := taskToProto(t)
	return &taskqueuev1.CompleteTaskResponse{Task: pt}, err
}

func (s *taskServer) CompleteTasks(ctx context.Context, req *taskqueuev1.CompleteTasksRequest) (*taskqueuev1.CompleteTasksResponse, error) {
	if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
		return nil, err
	}
	n := len(req.GetClaims())
	if n == 0 || n > maxBatch {
		return nil, domainerr.Invalid("claims", "must hold 1 to 1000 claims")
	}
	claims := make([]task.Completion, n)
	for i, c := range req.GetClaims() {
		field := indexed("claims", i)
		if err := validateTaskID(join(field, "task_id"), c.GetTaskId()); err != nil {
			return nil, err
		}
		tok, err := task.ParseClaimToken(c.GetTaskId(), c.GetClaimToken())
		if err != nil {
			return nil, domainerr.Invalid(join(field, "claim_token"), "is not a claim token of this task")
		}
		result, err := structJSON(join(field, "result"), c.GetResult(), maxPayload)
		if err != nil {
			return nil, err
		}
		claims[i] = task.Completion{Token: tok, Result: result}
	}
	tasks, errs, err := s.Queue.CompleteMany(ctx, req.GetSessionId(), req.GetSessionToken(), claims)
	if err != nil {
		return nil, err
	}
	resp := &taskqueuev1.CompleteTasksResponse{Results: make([]*taskqueuev1.CompletedClaimResult, n)}
	for i := range claims {
		if errs[i] != nil {
			st := status.Convert(grpcserver.ToStatus(errs[i]))
			resp.Results[i] = &taskqueuev1.CompletedClaimResult{Code: int32(st.Code()), Message: st.Message()}
			continue
		}
		pt, err := taskToProto(tasks[i])
		if err != nil {
			return nil, err
		}
		resp.Results[i] = &taskqueuev1.CompletedClaimResult{Task: pt}
	}
	sent := make([]*taskqueuev1.Task, n)
	for i, r := range resp.Results {
		sent[i] = r.GetTask()
	}
	s.fitTasks(sent)
	return resp, nil
}

func (s *taskServer) FailTask(ctx context.Context, req *taskqueuev1.FailTaskRequest) (*taskqueuev1.FailTaskResponse, error) {
	tok, err := claimRef(req.GetTaskId(), req.GetClaimToken(), req.GetSessionId(), req.GetSessionToken())
	if err != nil {
		return nil, err
	}
	if len(req.GetError()) > maxError {
		return nil, domainerr.Invalid("error", "must be at most 8 KiB")
	}
	if err := reqfield.Text("error", req.GetError()); err != nil {
		return nil, err
	}
	t, retry, err := s.Queue.Fail(ctx, tok, req.GetSessionId(), req.GetSessionToken(), req.GetError(), req.GetRetryable())
	if err != nil {
		return nil, err
	}
	pt, err := taskToProto(t)
	return &taskqueuev1.FailTaskResponse{Task: pt, WillRetry: retry}, err
}

func (s *taskServer) CancelTask(ctx context.Context, req *taskqueuev1.CancelTaskRequest) (*taskqueuev1.CancelTaskResponse, error) {
	if err := validateTaskID("task_id", req.GetTaskId()); err != nil {
		return nil, err
	}
	if len(req.GetReason()) > maxReason {
		return nil, domainerr.Invalid("reason", "must be at most 1 KiB")
	}
	if err := reqfield.Text("reason", req.GetReason()); err != nil {
		return nil, err
	}
	reason := req.GetReason()
	if reason == "" {
		reason = "cancelled"
	}
	t, err := s.Queue.Cancel(ctx, req.GetTaskId(), reason)
	if err != nil {
		return nil, err
	}
	pt, err := taskToProto(t)
	return &taskqueuev1.CancelTaskResponse{Task: pt}, err
}

func (s *taskServer) RetryTask(ctx context.Context, req *taskqueuev1.RetryTaskRequest) (*taskqueuev1.RetryTaskResponse, error) {
	if err := validateTaskID("task_id", req.GetTaskId()); err != nil {
		return nil, err
	}
	at, err := runAt("run_at", req.GetRunAt())
	if err != nil {
		return nil, err
	}
	t, err := s.Queue.Retry(ctx, req.GetTaskId(), req.GetResetAttempts(), at)
	if err != nil {
		return nil, err
	}
	pt, err := taskToProto(t)
	return &taskqueuev1.RetryTaskResponse{Task: pt}, err
}

func (s *taskServer) GetTask(ctx context.Context, req *taskqueuev1.GetTaskRequest) (*taskqueuev1.GetTaskResponse, error) {
	switch {
	case req.GetTaskId() == "" && req.GetIdempotencyKey() == "":
		return nil, domainerr.Invalid("task_id", "give task_id or idempotency_key")
	case req.GetTaskId() != "" && req.GetIdempotencyKey() != "":
		return nil, domainerr.Invalid("idempotency_key", "give task_id or idempotency_key, not both")
	case req.GetTaskId() != "":
		if err := validateTaskID("task_id", req.GetTaskId()); err != nil {
			return nil, err
		}
	default:
		if err := reqfield.Text("idempotency_key", req.GetIdempotencyKey()); err != nil {
			return nil, err
		}
	}
	t, err := s.Queue.Get(ctx, req.GetTaskId(), req.GetIdempotencyKey())
	if err != nil {
		return nil, err
	}
	pt, err := taskToProto(t)
	return &taskqueuev1.GetTaskResponse{Task: pt}, err
}

func (s *taskServer) ListTasks(ctx context.Context, req *taskqueuev1.ListTasksRequest) (*taskqueuev1.ListTasksResponse, error) {
	f := task.ListFilter{Types: req.GetTaskTypes(), LessonID: req.GetLessonId(), ClaimedBySessionID: req.GetClaimedBySessionId()}
	if err := reqfield.Texts("task_types", f.Types); err != nil {
		return nil, err
	}
	if err := reqfield.Text("claimed_by_session_id", f.ClaimedBySessionID); err != nil {
		return nil, err
	}
	var err error
	if f.Limit, err = reqfield.PageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	for _, st := range req.GetStates() {
		v, ok := stateFromProto[st]
		if !ok {
			return nil, domainerr.Invalid("states", "unknown state "+st.String())
		}
		f.States = append(f.States, v)
	}
	if f.LessonID != "" {
		if err := validateUUID("lesson_id", f.LessonID); err != nil {
			return nil, err
		}
	}
	if f.AfterCreatedAt, f.AfterID, err = parseTimePageToken(req.GetPageToken()); err != nil {
		return nil, err
	}
	budget := s.replyBudget()
	f.MaxBytes = budget.Left()
	tasks, err := s.Queue.List(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &taskqueuev1.ListTasksResponse{Tasks: make([]*taskqueuev1.Task, 0, len(tasks))}
	// The page ends at page_size or where the reply's byte budget ends
	// (the repository left out rows past it), whichever comes first.
	full := len(tasks) == f.Limit || cutByBytes(tasks, f.MaxBytes)
	for _, t := range tasks {
		pt, err := taskToProto(t)
		if err != nil {
			return nil, err
		}
		if !budget.Add(pt) {
			full = true
			break
		}
		resp.Tasks = append(resp.Tasks, pt)
	}
	if full && len(resp.Tasks) > 0 {
		last := resp.Tasks[len(resp.Tasks)-1]
		resp.NextPageToken = timePageToken(last.GetCreatedAt().AsTime(), last.GetTaskId())
	}
	return resp, nil
}

// cutByBytes says whether the repository ended a page of tasks at maxBytes
// rather than at its end: it keeps every task whose predecessors' JSON is
// within maxBytes, so a page whose JSON passes maxBytes may have been cut.
func cutByBytes(tasks []task.Task, maxBytes int) bool {
	n := 0
	for _, t := range tasks {
		n += len(t.Payload) + len(t.Result)
	}
	return maxBytes > 0 && n > maxBytes
}

type lessonServer struct {
	taskqueuev1.UnimplementedLessonServiceServer
	*Servers
}

func (s *lessonServer) CreateLesson(ctx context.Context, req *taskqueuev1.CreateLessonRequest) (*taskqueuev1.CreateLessonResponse, error) {
	l, err := newLesson(req)
	if err != nil {
		return nil, err
	}
	out, err := s.Queue.CreateLesson(ctx, l)
	if err != nil {
		return nil, err
	}
	pl, err := lessonToProto(out)
	return &taskqueuev1.CreateLessonResponse{Lesson: pl}, err
}

func (s *lessonServer) GetLesson(ctx context.Context, req *taskqueuev1.GetLessonRequest) (*taskqueuev1.GetLessonResponse, error) {
	if err := validateUUID("lesson_id", req.GetLessonId()); err != nil {
		return nil, err
	}
	l, err := s.Queue.GetLesson(ctx, req.GetLessonId())
	if err != nil {
		return nil, err
	}
	pl, err := lessonToProto(l)
	return &taskqueuev1.GetLessonResponse{Lesson: pl}, err
}

func (s *lessonServer) ListLessons(ctx context.Context, req *taskqueuev1.ListLessonsRequest) (*taskqueuev1.ListLessonsResponse, error) {
	f := task.LessonFilter{Project: req.GetProject()}
	if err := reqfield.Text("project", f.Project); err != nil {
		return nil, err
	}
	var err error
	if f.Limit, err = reqfield.PageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	if f.AfterCreatedAt, f.AfterID, err = parseTimePageToken(req.GetPageToken()); err != nil {
		return nil, err
	}
	lessons, err := s.Queue.ListLessons(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &taskqueuev1.ListLessonsResponse{Lessons: make([]*taskqueuev1.Lesson, 0, len(lessons))}
	budget, full := s.replyBudget(), len(lessons) == f.Limit
	for _, l := range lessons {
		pl, err := lessonToProto(l)
		if err != nil {
			return nil, err
		}
		if !budget.Add(pl) {
			full = true
			break
		}
		resp.Lessons = append(resp.Lessons, pl)
	}
	if full && len(resp.Lessons) > 0 {
		last := resp.Lessons[len(resp.Lessons)-1]
		resp.NextPageToken = timePageToken(last.GetCreatedAt().AsTime(), last.GetLessonId())
	}
	return resp, nil
}

func (s *lessonServer) UpdateLesson(ctx context.Context, req *taskqueuev1.UpdateLessonRequest) (*taskqueuev1.UpdateLessonResponse, error) {
	if err := validateUUID("lesson_id", req.GetLessonId()); err != nil {
		return nil, err
	}
	u, err := lessonUpdate(req)
	if err != nil {
		return nil, err
	}
	l, err := s.Queue.UpdateLesson(ctx, req.GetLessonId(), u)
	if err != nil {
		return nil, err
	}
	pl, err := lessonToProto(l)
	return &taskqueuev1.UpdateLessonResponse{Lesson: pl}, err
}

func (s *lessonServer) SetSessionAffinity(ctx context.Context, req *taskqueuev1.SetSessionAffinityRequest) (*taskqueuev1.SetSessionAffinityResponse, error) {
	a, err := newAffinity(req)
	if err != nil {
		return nil, err
	}
	out, err := s.Queue.SetAffinity(ctx, a)
	if err != nil {
		return nil, err
	}
	return &taskqueuev1.SetSessionAffinityResponse{Affinity: affinityToProto(out)}, nil
}

func (s *lessonServer) ListSessionAffinities(ctx context.Context, req *taskqueuev1.ListSessionAffinitiesRequest) (*taskqueuev1.ListSessionAffinitiesResponse, error) {
	if req.GetSessionName() == "" && req.GetLessonId() == "" {
		return nil, domainerr.Invalid("session_name", "give session_name, lesson_id or both")
	}
	f := task.AffinityFilter{SessionName: req.GetSessionName(), LessonID: req.GetLessonId()}
	if err := reqfield.Text("session_name", f.SessionName); err != nil {
		return nil, err
	}
	if f.LessonID != "" {
		if err := validateUUID("lesson_id", f.LessonID); err != nil {
			return nil, err
		}
	}
	var err error
	if f.Limit, err = reqfield.PageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	after, err := reqfield.ParsePageToken(req.GetPageToken(), 2)
	if err != nil {
		return nil, err
	}
	if after != nil {
		f.AfterSessionName, f.AfterLessonID = after[0], after[1]
	}
	affs, err := s.Queue.ListAffinities(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &taskqueuev1.ListSessionAffinitiesResponse{Affinities: make([]*taskqueuev1.SessionAffinity, 0, len(affs))}
	budget, full := s.replyBudget(), len(affs) == f.Limit
	for _, a := range affs {
		pa := affinityToProto(a)
		if !budget.Add(pa) {
			full = true
			break
		}
		resp.Affinities = append(resp.Affinities, pa)
	}
	if full && len(resp.Affinities) > 0 {
		last := resp.Affinities[len(resp.Affinities)-1]
		resp.NextPageToken = reqfield.PageToken(last.GetSessionName(), last.GetLessonId())
	}
	return resp, nil
}

func (s *lessonServer) DeleteSessionAffinity(ctx context.Context, req *taskqueuev1.DeleteSessionAffinityRequest) (*taskqueuev1.DeleteSessionAffinityResponse, error) {
	if err := validateName("session_name", req.GetSessionName()); err != nil {
		return nil, err
	}
	if err := validateUUID("lesson_id", req.GetLessonId()); err != nil {
		return nil, err
	}
	if err := s.Queue.DeleteAffinity(ctx, req.GetSessionName(), req.GetLessonId()); err != nil {
		return nil, err
	}
	return &taskqueuev1.DeleteSessionAffinityResponse{}, nil
}
