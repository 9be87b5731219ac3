package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/openapitest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// TestUpTaskQueueScenario is what a new user checks with `make run`: the same
// key enqueued over gRPC and over REST gives one task; a registered session
// claims it and dies; the task comes back and another session completes it,
// while the dead session's completion is refused.
func TestUpTaskQueueScenario(t *testing.T) {
	env := append(upEnv(t, t.TempDir()), "SESSION_LEASE_TIMEOUT=1s", "SESSION_HEARTBEAT_INTERVAL=200ms")
	p := startUp(t, env)
	ready := p.next(t, 90*time.Second)
	if ready.Event != "ready" {
		t.Fatalf("first event = %+v; logs:\n%s", ready, p.logs())
	}
	defer p.interruptAndWait(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	conn, err := grpcclient.Dial(ready.Services["taskqueue"].Address, grpcclient.WithBearer(readCredential(t, ready, "admin")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tasks := taskqueuev1.NewTaskServiceClient(conn)
	first, err := tasks.EnqueueTask(ctx, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "lesson-42/step-1", TaskType: "code_review"})
	if err != nil || first.GetDuplicate() {
		t.Fatalf("enqueue over gRPC: %+v, %v", first, err)
	}
	gw := "http://" + ready.Services["gateway"].Address
	body := `{"idempotency_key":"lesson-42/step-1","task_type":"code_review"}`
	// Without a credential the queue is closed: the issue-9 attack read and
	// cancelled anyone's tasks.
	resp, err := openapitest.ClientForBadRequests(t).Post(gw+"/v1/tasks", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /v1/tasks without a credential: %d, want 401", resp.StatusCode)
	}
	req, err := http.NewRequest(http.MethodPost, gw+"/v1/tasks", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+readCredential(t, ready, "admin"))
	resp, err = openapitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rest struct {
		Task struct {
			TaskID string `json:"task_id"`
		} `json:"task"`
		Duplicate bool `json:"duplicate"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rest); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/tasks: %d, %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if !rest.Duplicate || rest.Task.TaskID != first.GetTask().GetTaskId() {
		t.Fatalf("REST enqueue of the same key = %+v, want the same task as a duplicate", rest)
	}

	coord, err := client.New(client.Options{Addrs: []string{ready.Services["coordinator"].Address}})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	register := func(name string) (string, string) {
		r, err := coord.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetSession().GetSessionId(), r.GetSessionToken()
	}
	doomedID, doomedTok := register("doomed")
	beater := coord.StartHeartbeat(context.Background(), doomedID, doomedTok, 200*time.Millisecond, nil)
	claims, err := tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: doomedID, SessionToken: doomedTok, Wait: durationpb.New(5 * time.Second)})
	if err != nil || len(claims.GetClaims()) != 1 {
		t.Fatalf("claim by the first session: %+v, %v", claims, err)
	}
	stale := claims.GetClaims()[0]
	beater.Stop() // the session dies: no more heartbeats

	survivorID, survivorTok := register("survivor")
	h := coord.StartHeartbeat(context.Background(), survivorID, survivorTok, 200*time.Millisecond, nil)
	defer h.Stop()
	var again *taskqueuev1.ClaimTasksResponse
	waitUntil(t, 20*time.Second, "the task to come back to another session", func() bool {
		again, err = tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: survivorID, SessionToken: survivorTok, Wait: durationpb.New(time.Second)})
		return err == nil && len(again.GetClaims()) == 1
	})
	c := again.GetClaims()[0]
	if c.GetTask().GetTaskId() != stale.GetTask().GetTaskId() || c.GetTask().GetAttempt() != 2 {
		t.Fatalf("second claim = %+v", c)
	}
	if _, err := tasks.CompleteTask(ctx, &taskqueuev1.CompleteTaskRequest{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken(), SessionId: survivorID, SessionToken: survivorTok}); err != nil {
		t.Fatalf("completion by the survivor: %v", err)
	}
	_, err = tasks.CompleteTask(ctx, &taskqueuev1.CompleteTaskRequest{TaskId: stale.GetTask().GetTaskId(), ClaimToken: stale.GetClaimToken(), SessionId: doomedID, SessionToken: doomedTok})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("completion by the dead session: %v, want FAILED_PRECONDITION", err)
	}

	// The CLI sees the outcome.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"task", "get", "--taskqueue", ready.Services["taskqueue"].Address, "--key", "lesson-42/step-1"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "completed") {
		t.Fatalf("gaia task get (exit %d):\n%s%s", code, stdout.String(), stderr.String())
	}
}
