package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gaia-platform/gaia/agent"
	"github.com/gaia-platform/gaia/internal/pgtest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRunWorksTasksAndSettlesThem drives the SDK against a real coordinator
// and queue: results complete tasks, errors fail them (retryable unless
// Permanent), locks come with fencing tokens, and shutdown deregisters.
func TestRunWorksTasksAndSettlesThem(t *testing.T) {
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	q := queuetest.Start(t, pgtest.NewDatabase(t), coord.Addrs(), queuetest.Options{Quiet: true, Keys: coord.Keys})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	enqueue := func(key string, payload map[string]any) string {
		st, _ := structpb.NewStruct(payload)
		r, err := q.Tasks().EnqueueTask(ctx, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: key, TaskType: "code_review", Payload: st, MaxAttempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetTask().GetTaskId()
	}
	ok := enqueue("ok", map[string]any{"locks": []any{"repo:b", "repo:a", "repo:a"}})
	flaky := enqueue("flaky", map[string]any{"fail": "retry"})
	broken := enqueue("broken", map[string]any{"fail": "permanent"})

	var mu sync.Mutex
	seenLocks := map[string][]agent.Lock{}
	handler := func(ctx context.Context, task *agent.Task) (map[string]any, error) {
		mu.Lock()
		seenLocks[task.ID] = task.Locks
		mu.Unlock()
		switch {
		case task.ID == flaky && task.Attempt == 1:
			return nil, errors.New("transient")
		case task.ID == broken:
			return nil, agent.Permanent(errors.New("cannot ever work"))
		}
		return map[string]any{"attempt": task.Attempt}, nil
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var sessionID string
	registered := make(chan struct{})
	go func() {
		done <- agent.Run(runCtx, agent.Config{
			Coordinator: coord.Addrs(),
			TaskQueue:   q.Addr,
			Session:     &coordinatorv1.RegisterSessionRequest{Name: "sdk", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_OTHER, MaxConcurrentTasks: 2},
			ClaimWait:   500 * time.Millisecond,
			GracePeriod: 5 * time.Second,
		}, handler, func(e agent.Event) {
			if e.Kind == "registered" {
				sessionID = e.Detail
				close(registered)
			}
		})
	}()
	<-registered

	state := func(id string) *taskqueuev1.Task {
		r, err := q.Tasks().GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: id})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetTask()
	}
	deadline := time.Now().Add(30 * time.Second)
	for state(ok).GetState() != taskqueuev1.TaskState_TASK_STATE_COMPLETED || state(broken).GetState() != taskqueuev1.TaskState_TASK_STATE_DEAD || state(flaky).GetState() != taskqueuev1.TaskState_TASK_STATE_PENDING {
		if time.Now().After(deadline) {
			t.Fatalf("tasks did not settle: ok=%v broken=%v flaky=%v", state(ok).GetState(), state(broken).GetState(), state(flaky).GetState())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := fmt.Sprint(seenLocks[ok]); len(seenLocks[ok]) != 2 || seenLocks[ok][0].Key != "repo:a" || seenLocks[ok][1].Key != "repo:b" || seenLocks[ok][0].FencingToken == 0 {
		t.Fatalf("locks seen by the handler = %s, want repo:a then repo:b with tokens", got)
	}
	if f := state(flaky); f.GetAttempt() != 1 || f.GetLastError() != "transient" {
		t.Fatalf("flaky after its first failure = %+v", f)
	}
	if b := state(broken); b.GetAttempt() != 1 || b.GetLastError() != "cannot ever work" {
		t.Fatalf("broken = %+v", b)
	}
	// The locks were released after the task.
	locks, err := coord.Client().Locks().ListLocks(ctx, &coordinatorv1.ListLocksRequest{Prefix: "repo:"})
	if err != nil || len(locks.GetLocks()) != 0 {
		t.Fatalf("locks left: %v, %v", locks.GetLocks(), err)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run after shutdown: %v", err)
	}
	s, err := coord.Client().Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: sessionID})
	if err != nil || s.GetSession().GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_DEREGISTERED {
		t.Fatalf("session after shutdown: %+v, %v", s.GetSession(), err)
	}
}

// TestRunStopsATaskWhoseClaimIsLost cancels a task from under its worker:
// the handler's context ends at once and nothing is settled by the worker.
func TestRunStopsATaskWhoseClaimIsLost(t *testing.T) {
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	q := queuetest.Start(t, pgtest.NewDatabase(t), coord.Addrs(), queuetest.Options{Quiet: true, Keys: coord.Keys})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := q.Tasks().EnqueueTask(ctx, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "long", TaskType: "t", ClaimTimeout: durationpb.New(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	started, stopped := make(chan struct{}), make(chan error, 1)
	handler := func(ctx context.Context, task *agent.Task) (map[string]any, error) {
		close(started)
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return nil, ctx.Err()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = agent.Run(runCtx, agent.Config{
			Coordinator: coord.Addrs(), TaskQueue: q.Addr,
			Session: &coordinatorv1.RegisterSessionRequest{Name: "victim", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_OTHER},
		}, handler, nil)
	}()
	<-started
	if _, err := q.Tasks().CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: r.GetTask().GetTaskId(), Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	// The worker learns on its next claim extension, every third of the
	// task's 3 s claim timeout.
	select {
	case cause := <-stopped:
		if cause == nil {
			t.Fatal("handler stopped without a cause")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler still running after its task was cancelled")
	}
}

// TestRunReleasesTheClaimOfATaskWhoseCompletionIsRefused: a handler that
// succeeded with a result the queue could not store (a NUL byte, which
// PostgreSQL refuses) had its CompleteTask fail; the worker only logged it
// and kept the claim, so the task sat claimed for its whole claim timeout
// and then ran again to the same end. It is now failed at once, for good,
// with the reason.
func TestRunReleasesTheClaimOfATaskWhoseCompletionIsRefused(t *testing.T) {
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	q := queuetest.Start(t, pgtest.NewDatabase(t), coord.Addrs(), queuetest.Options{Quiet: true, Keys: coord.Keys})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := q.Tasks().EnqueueTask(ctx, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "nul", TaskType: "t", MaxAttempts: 3, ClaimTimeout: durationpb.New(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	id := r.GetTask().GetTaskId()
	var runs sync.WaitGroup
	runs.Add(1)
	handler := func(ctx context.Context, task *agent.Task) (map[string]any, error) {
		defer runs.Done()
		return map[string]any{"output": "a\x00b"}, nil
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = agent.Run(runCtx, agent.Config{
			Coordinator: coord.Addrs(), TaskQueue: q.Addr, ClaimWait: 500 * time.Millisecond,
			Session: &coordinatorv1.RegisterSessionRequest{Name: "nul", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_OTHER},
		}, handler, nil)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, err := q.Tasks().GetTask(ctx, &taskqueuev1.GetTaskRequest{TaskId: id})
		if err != nil {
			t.Fatal(err)
		}
		task := g.GetTask()
		if task.GetState() == taskqueuev1.TaskState_TASK_STATE_DEAD {
			if task.GetAttempt() != 1 || !strings.Contains(task.GetLastError(), "completing it failed") {
				t.Fatalf("dead task = attempt %d, last error %q; want attempt 1 with why completing failed", task.GetAttempt(), task.GetLastError())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task is still %v with attempt %d: its claim was kept after CompleteTask failed", task.GetState(), task.GetAttempt())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
