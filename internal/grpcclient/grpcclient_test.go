package grpcclient_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
)

// flakyService fails its first failures calls with failWith, then succeeds,
// counting every attempt that reaches it.
type flakyService struct {
	testgrpc.UnimplementedTestServiceServer
	failures int32
	failWith error
	attempts atomic.Int32
}

func (f *flakyService) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if f.attempts.Add(1) <= f.failures {
		return nil, f.failWith
	}
	return &testgrpc.SimpleResponse{Username: "ok"}, nil
}

func TestDialRetriesUnavailable(t *testing.T) {
	tests := []struct {
		name         string
		failures     int32
		failWith     error
		opts         []grpc.DialOption
		wantAttempts int32
		wantCode     codes.Code
	}{
		{name: "success needs one attempt", wantAttempts: 1, wantCode: codes.OK},
		{name: "three unavailable then success", failures: 3, failWith: status.Error(codes.Unavailable, "restarting"),
			wantAttempts: 4, wantCode: codes.OK},
		{name: "gives up after four attempts", failures: 10, failWith: status.Error(codes.Unavailable, "restarting"),
			wantAttempts: 4, wantCode: codes.Unavailable},
		{name: "a follower's answer is retried", failures: 2, failWith: domainerr.NotLeader("10.0.0.2:8300"),
			wantAttempts: 3, wantCode: codes.OK},
		{name: "other codes are not retried", failures: 1, failWith: domainerr.New(domainerr.NotFound, "task not found"),
			wantAttempts: 1, wantCode: codes.NotFound},
		{name: "internal is not retried", failures: 1, failWith: status.Error(codes.Internal, "internal error"),
			wantAttempts: 1, wantCode: codes.Internal},
		{name: "caller options override the defaults", failures: 1, failWith: status.Error(codes.Unavailable, "restarting"),
			opts: []grpc.DialOption{grpc.WithDisableRetry()}, wantAttempts: 1, wantCode: codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &flakyService{failures: tt.failures, failWith: tt.failWith}
			// grpctest.Serve dials with the defaults; dial again for the options.
			served := grpctest.Serve(t, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, svc) })
			conn, err := grpcclient.Dial(served.Target(), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			_, err = testgrpc.NewTestServiceClient(conn).UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
			if code := status.Code(err); code != tt.wantCode {
				t.Errorf("call ended with %v (%v), want %v", code, err, tt.wantCode)
			}
			if got := svc.attempts.Load(); got != tt.wantAttempts {
				t.Errorf("server saw %d attempts, want %d", got, tt.wantAttempts)
			}
		})
	}
}

func TestKeepaliveIsWithinTheServersPolicy(t *testing.T) {
	// A client pinging more often than servers allow is disconnected with
	// ENHANCE_YOUR_CALM, and every idle connection would break.
	if grpcclient.KeepaliveTime < grpcserver.KeepaliveMinPingInterval {
		t.Errorf("clients ping every %v but servers allow at most one ping per %v",
			grpcclient.KeepaliveTime, grpcserver.KeepaliveMinPingInterval)
	}
}

func TestDialRejectsAnUnparseableTarget(t *testing.T) {
	_, err := grpcclient.Dial("%%%")
	if err == nil || !strings.Contains(err.Error(), "%%%") {
		t.Errorf("Dial(%%%%%%) = %v, want an error naming the target", err)
	}
}
