package agent

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// settleQueue answers CompleteTask with the codes it is given, in turn,
// then OK, and records FailTask calls.
type settleQueue struct {
	taskqueuev1.TaskServiceClient
	complete []codes.Code
	calls    int
	failed   []*taskqueuev1.FailTaskRequest
}

func (q *settleQueue) CompleteTask(context.Context, *taskqueuev1.CompleteTaskRequest, ...grpc.CallOption) (*taskqueuev1.CompleteTaskResponse, error) {
	q.calls++
	if len(q.complete) > 0 {
		c := q.complete[0]
		q.complete = q.complete[1:]
		return nil, status.Error(c, "said no")
	}
	return &taskqueuev1.CompleteTaskResponse{}, nil
}

func (q *settleQueue) FailTask(_ context.Context, r *taskqueuev1.FailTaskRequest, _ ...grpc.CallOption) (*taskqueuev1.FailTaskResponse, error) {
	q.failed = append(q.failed, r)
	return &taskqueuev1.FailTaskResponse{}, nil
}

// TestCompleteThatFailsDoesNotStrandTheClaim: a failed CompleteTask was only
// logged, and the claim stayed held until its timeout.
func TestCompleteThatFailsDoesNotStrandTheClaim(t *testing.T) {
	defer func(d time.Duration) { settleRetryFor = d }(settleRetryFor)
	settleRetryFor = 2 * time.Second
	for _, tc := range []struct {
		name          string
		codes         []codes.Code
		wantEvent     string
		wantFailed    bool
		wantRetryable bool
	}{
		{"queue briefly unreachable: retried, then completed", []codes.Code{codes.Unavailable, codes.Unavailable}, "completed", false, false},
		{"result refused: failed for good", []codes.Code{codes.Internal}, "failed", true, false},
		{"result too large: failed for good", []codes.Code{codes.InvalidArgument}, "failed", true, false},
		{"queue unreachable throughout: failed as retryable", []codes.Code{codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.Unavailable}, "failed", true, true},
		{"claim already lost: nothing to release", []codes.Code{codes.FailedPrecondition}, "claim_lost", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &settleQueue{complete: tc.codes}
			var events []Event
			w := &Worker{tasks: q, log: zap.NewNop(), events: func(e Event) { events = append(events, e) }}
			w.complete(&Task{ID: "t1", Attempt: 1}, map[string]any{"ok": true}, zap.NewNop())
			if len(events) != 1 || events[0].Kind != tc.wantEvent {
				t.Fatalf("events = %+v, want one %s", events, tc.wantEvent)
			}
			if got := len(q.failed) == 1; got != tc.wantFailed {
				t.Fatalf("FailTask calls = %d, want the claim released: %v", len(q.failed), tc.wantFailed)
			}
			if tc.wantFailed && q.failed[0].GetRetryable() != tc.wantRetryable {
				t.Fatalf("FailTask retryable = %v, want %v", q.failed[0].GetRetryable(), tc.wantRetryable)
			}
		})
	}
}
