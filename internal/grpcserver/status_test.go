package grpcserver_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcserver"
)

var errTaskNotFound = domainerr.New(domainerr.NotFound, "task not found")

func TestToStatus(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantCode    codes.Code
		wantMsg     string
		wantDetails []proto.Message
	}{
		{name: "status passes through", err: status.Error(codes.ResourceExhausted, "slow down"),
			wantCode: codes.ResourceExhausted, wantMsg: "slow down"},
		{name: "wrapped status keeps its own message", err: fmt.Errorf("call coordinator: %w", status.Error(codes.NotFound, "no such lock")),
			wantCode: codes.NotFound, wantMsg: "no such lock"},
		{name: "canceled", err: context.Canceled, wantCode: codes.Canceled, wantMsg: "context canceled"},
		{name: "wrapped deadline hides the wrapping", err: fmt.Errorf("select from tasks: %w", context.DeadlineExceeded),
			wantCode: codes.DeadlineExceeded, wantMsg: "context deadline exceeded"},
		{name: "sentinel", err: errTaskNotFound, wantCode: codes.NotFound, wantMsg: "task not found"},
		{name: "wrapped sentinel hides the wrapping", err: fmt.Errorf("select task 42 from tasks: %w", errTaskNotFound),
			wantCode: codes.NotFound, wantMsg: "task not found"},
		{name: "every kind keeps its code", err: domainerr.New(domainerr.FailedPrecondition, "stale fencing token"),
			wantCode: codes.FailedPrecondition, wantMsg: "stale fencing token"},
		{name: "invalid names the field", err: domainerr.Invalid("task.queue", "must not be empty"),
			wantCode: codes.InvalidArgument, wantMsg: "invalid task.queue: must not be empty",
			wantDetails: []proto.Message{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "task.queue", Description: "must not be empty"}}}}},
		{name: "invalid without a field", err: domainerr.New(domainerr.InvalidArgument, "bad request"),
			wantCode: codes.InvalidArgument, wantMsg: "bad request"},
		{name: "not leader carries the leader", err: fmt.Errorf("apply: %w", domainerr.NotLeader("10.0.0.2:8300")),
			wantCode: codes.Unavailable, wantMsg: "not the leader; leader is at 10.0.0.2:8300",
			wantDetails: []proto.Message{&errdetails.ErrorInfo{Reason: grpcserver.ReasonNotLeader, Domain: grpcserver.ErrorDomain,
				Metadata: map[string]string{"leader": "10.0.0.2:8300"}}}},
		{name: "no leader yet", err: domainerr.NotLeader(""), wantCode: codes.Unavailable, wantMsg: "no leader elected yet"},
		{name: "unexpected error is hidden", err: errors.New("dial tcp db:5432: password=s3cret rejected"),
			wantCode: codes.Internal, wantMsg: "internal error"},
		{name: "undeclared kind is unexpected", err: &domainerr.Error{Kind: 99, Msg: "secret detail"},
			wantCode: codes.Internal, wantMsg: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := grpcserver.ToStatus(tt.err)
			st, ok := status.FromError(got)
			if !ok {
				t.Fatalf("ToStatus returned %T %v, not a status error", got, got)
			}
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Errorf("ToStatus = %v %q, want %v %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
			details := st.Details()
			if len(details) != len(tt.wantDetails) {
				t.Fatalf("details = %v, want %v", details, tt.wantDetails)
			}
			for i, d := range details {
				msg, ok := d.(protoadapt.MessageV2)
				if !ok || !proto.Equal(msg, tt.wantDetails[i]) {
					t.Errorf("detail %d = %v, want %v", i, d, tt.wantDetails[i])
				}
			}
		})
	}
	if grpcserver.ToStatus(nil) != nil {
		t.Error("ToStatus(nil) != nil")
	}
}
