package grpcserver_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
)

// Graceful shutdown: draining streams and unary calls, and its time limit;
// and how Serve ends.

func TestDrainEndsStreamsWithUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		result func(ctx context.Context) error // what the handler returns once its context ends
	}{
		{"handler returns ctx.Err", func(ctx context.Context) error { return ctx.Err() }},
		{"handler wraps ctx.Err", func(ctx context.Context) error { return fmt.Errorf("watch tasks: %w", ctx.Err()) }},
		{"handler returns Canceled status", func(context.Context) error { return status.Error(codes.Canceled, "stream has ended") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, &fakeService{stream: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
				if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
					return err
				}
				<-ss.Context().Done()
				return tt.result(ss.Context())
			}}, grpcserver.Options{ShutdownTimeout: 30 * time.Second})

			stream, err := r.client.StreamingOutputCall(context.Background(), &testgrpc.StreamingOutputCallRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatalf("first message: %v", err)
			}
			if got := r.healthOf(t, ""); got != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("health before shutdown = %v, want SERVING", got)
			}

			began := time.Now()
			if err := r.shutdown(t); err != nil {
				t.Errorf("Serve returned %v, want nil", err)
			}
			// Well inside ShutdownTimeout: the stream was ended, not waited out.
			if elapsed := time.Since(began); elapsed > 10*time.Second {
				t.Errorf("shutdown took %v with an open stream", elapsed)
			}
			_, err = stream.Recv()
			if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "server is shutting down" {
				t.Errorf("client got %v %q, want Unavailable \"server is shutting down\"", st.Code(), st.Message())
			}
			select {
			case <-r.srv.Draining():
			default:
				t.Error("Draining() is still open after shutdown")
			}
			for _, service := range []string{"", testService} {
				if got := r.healthOf(t, service); got != healthpb.HealthCheckResponse_NOT_SERVING {
					t.Errorf("health of %q after shutdown = %v, want NOT_SERVING", service, got)
				}
			}
		})
	}
}

func TestClientCancellingAStreamIsNotMistakenForDrain(t *testing.T) {
	r := start(t, &fakeService{stream: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
			return err
		}
		<-ss.Context().Done()
		return ss.Context().Err()
	}}, grpcserver.Options{})

	ctx, cancel := context.WithCancel(context.Background())
	stream, err := r.client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	cancel()

	// The client does not hear the server's verdict, so read it from the log.
	entry := waitForEntry(t, r.logs, "rpc finished")
	if code := entry.ContextMap()["code"]; code != codes.Canceled.String() || entry.Level != zapcore.InfoLevel {
		t.Errorf("logged code %v at %v, want Canceled at info", code, entry.Level)
	}
}

func TestDrainLetsInFlightUnaryCallsFinish(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	r := start(t, &fakeService{unary: func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
		close(started)
		<-release
		return &testgrpc.SimpleResponse{Username: "done"}, ctx.Err()
	}}, grpcserver.Options{ShutdownTimeout: 30 * time.Second})

	type result struct {
		resp *testgrpc.SimpleResponse
		err  error
	}
	inFlight := make(chan result, 1)
	go func() {
		resp, err := r.client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
		inFlight <- result{resp, err}
	}()
	<-started

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- r.shutdown(t) }()
	<-r.srv.Draining()

	// While draining, a new connection is refused.
	late, err := grpcclient.Dial(r.addr, grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if _, err := testgrpc.NewTestServiceClient(late).UnaryCall(context.Background(), &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("call on a new connection while draining got %v, want Unavailable", err)
	}

	close(release)
	res := <-inFlight
	if res.err != nil || res.resp.GetUsername() != "done" {
		t.Errorf("in-flight call got %v, %v; want it to complete", res.resp, res.err)
	}
	if err := <-shutdownDone; err != nil {
		t.Errorf("Serve returned %v, want nil", err)
	}
}

func TestDrainGivesUpAfterShutdownTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	started, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	r := start(t, &fakeService{unary: func(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
		close(started)
		<-release // ignores its context, as a stuck handler would
		return &testgrpc.SimpleResponse{}, nil
	}}, grpcserver.Options{ShutdownTimeout: timeout})

	callErr := make(chan error, 1)
	go func() {
		_, err := r.client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
		callErr <- err
	}()
	<-started

	began := time.Now()
	if err := r.shutdown(t); err != nil {
		t.Errorf("Serve returned %v, want nil", err)
	}
	if elapsed := time.Since(began); elapsed < timeout {
		t.Errorf("Serve returned after %v, before the %v drain timeout", elapsed, timeout)
	}
	if err := <-callErr; status.Code(err) != codes.Unavailable {
		t.Errorf("stuck call got %v, want Unavailable once its connection closed", err)
	}
	if r.logs.FilterMessage("grpc server drain timed out; closing remaining connections").Len() != 1 {
		t.Error("the forced stop was not logged")
	}
}

func TestServeReturnsListenerFailure(t *testing.T) {
	srv := grpcserver.New(grpcserver.Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()

	err = srv.Serve(context.Background(), lis)
	if err == nil || !strings.Contains(err.Error(), lis.Addr().String()) {
		t.Errorf("Serve on a closed listener = %v, want an error naming %s", err, lis.Addr())
	}
	select {
	case <-srv.Draining():
	default:
		t.Error("Draining() is still open after Serve failed")
	}
}

func TestServeWithAnEndedContextReturnsNil(t *testing.T) {
	srv := grpcserver.New(grpcserver.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Serve(ctx, grpctest.Listen(t)); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func TestListenAndServeReportsABadAddress(t *testing.T) {
	err := grpcserver.ListenAndServe(context.Background(), "127.0.0.1:notaport", grpcserver.New(grpcserver.Options{}))
	if err == nil || !strings.Contains(err.Error(), "listen for grpc on 127.0.0.1:notaport") {
		t.Errorf("ListenAndServe = %v, want a listen error naming the address", err)
	}
}

// waitForEntry polls logs until an entry with msg appears.
func waitForEntry(t *testing.T, logs *observer.ObservedLogs, msg string) observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if entries := logs.FilterMessage(msg).AllUntimed(); len(entries) > 0 {
			return entries[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log entry within 10s", msg)
		}
		<-tick.C
	}
}
