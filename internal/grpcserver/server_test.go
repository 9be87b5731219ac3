package grpcserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
)

const testService = "grpc.testing.TestService"

// fakeService answers the interop TestService with whatever the test plugs
// in: UnaryCall for unary RPCs, StreamingOutputCall for streams.
type fakeService struct {
	testgrpc.UnimplementedTestServiceServer
	unary  func(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error)
	stream func(*testgrpc.StreamingOutputCallRequest, testgrpc.TestService_StreamingOutputCallServer) error
}

func (f *fakeService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return f.unary(ctx, req)
}

func (f *fakeService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
	return f.stream(req, ss)
}

// running is a grpcserver.Server serving a fakeService on loopback.
type running struct {
	srv    *grpcserver.Server
	addr   string
	conn   *grpc.ClientConn
	client testgrpc.TestServiceClient
	logs   *observer.ObservedLogs
	stop   context.CancelFunc
	served chan error
}

func start(t *testing.T, svc *fakeService, opts grpcserver.Options) *running {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	opts.Name = "test"
	opts.Logger = zap.New(core)
	srv := grpcserver.New(opts)
	testgrpc.RegisterTestServiceServer(srv.GRPC(), svc)
	lis := grpctest.Listen(t)

	ctx, stop := context.WithCancel(context.Background())
	r := &running{srv: srv, addr: lis.Addr().String(), logs: logs, stop: stop, served: make(chan error, 1)}
	go func() { r.served <- srv.Serve(ctx, lis) }()

	// Retries off: these tests count attempts and read one attempt's trailer.
	conn, err := grpcclient.Dial(r.addr, grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	r.conn = conn
	r.client = testgrpc.NewTestServiceClient(conn)
	t.Cleanup(func() {
		conn.Close()
		stop()
		select {
		case <-r.served:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s of the test ending")
		}
	})
	return r
}

// shutdown cancels Serve's context and returns what Serve returned.
func (r *running) shutdown(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.served:
		r.served <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context ending")
		return nil
	}
}

func (r *running) healthOf(t *testing.T, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := r.srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health of %q: %v", service, err)
	}
	return resp.GetStatus()
}

// finished returns the "rpc finished" entries logged so far.
func (r *running) finished() []observer.LoggedEntry {
	return r.logs.FilterMessage("rpc finished").AllUntimed()
}

func TestUnaryOutcomesAreMappedAndLogged(t *testing.T) {
	tests := []struct {
		name      string
		handler   func(context.Context) error
		wantCode  codes.Code
		wantMsg   string
		wantLevel zapcore.Level
		check     func(t *testing.T, st *status.Status, trailer metadata.MD, entry observer.LoggedEntry)
	}{
		{
			name:    "success is logged at debug",
			handler: func(context.Context) error { return nil }, wantCode: codes.OK, wantLevel: zapcore.DebugLevel,
		},
		{
			name:      "wrapped sentinel",
			handler:   func(context.Context) error { return fmt.Errorf("get task: %w", errTaskNotFound) },
			wantCode:  codes.NotFound,
			wantMsg:   "task not found",
			wantLevel: zapcore.InfoLevel,
		},
		{
			name:      "invalid field reaches the client as a detail",
			handler:   func(context.Context) error { return domainerr.Invalid("task.queue", "must not be empty") },
			wantCode:  codes.InvalidArgument,
			wantMsg:   "invalid task.queue: must not be empty",
			wantLevel: zapcore.InfoLevel,
			check: func(t *testing.T, st *status.Status, _ metadata.MD, _ observer.LoggedEntry) {
				for _, d := range st.Details() {
					if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 &&
						br.GetFieldViolations()[0].GetField() == "task.queue" {
						return
					}
				}
				t.Errorf("details = %v, want a BadRequest naming task.queue", st.Details())
			},
		},
		{
			name:      "not leader sends the leader in a trailer and a detail",
			handler:   func(context.Context) error { return fmt.Errorf("apply: %w", domainerr.NotLeader("10.0.0.2:8300")) },
			wantCode:  codes.Unavailable,
			wantMsg:   "not the leader; leader is at 10.0.0.2:8300",
			wantLevel: zapcore.WarnLevel,
			check: func(t *testing.T, st *status.Status, trailer metadata.MD, _ observer.LoggedEntry) {
				if got := trailer.Get(grpcclient.LeaderTrailer); !slices.Equal(got, []string{"10.0.0.2:8300"}) {
					t.Errorf("trailer %s = %v, want [10.0.0.2:8300]", grpcclient.LeaderTrailer, got)
				}
				for _, d := range st.Details() {
					if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetMetadata()["leader"] == "10.0.0.2:8300" {
						return
					}
				}
				t.Errorf("details = %v, want an ErrorInfo with the leader", st.Details())
			},
		},
		{
			name:      "unexpected error is hidden from the client and logged",
			handler:   func(context.Context) error { return errors.New("scan row: column queue_id does not exist") },
			wantCode:  codes.Internal,
			wantMsg:   "internal error",
			wantLevel: zapcore.ErrorLevel,
			check: func(t *testing.T, _ *status.Status, _ metadata.MD, entry observer.LoggedEntry) {
				cause, _ := entry.ContextMap()["cause"].(string)
				if !strings.Contains(cause, "column queue_id does not exist") {
					t.Errorf("log fields = %v, want the real error as cause", entry.ContextMap())
				}
			},
		},
		{
			name:      "deadline",
			handler:   func(context.Context) error { return fmt.Errorf("query: %w", context.DeadlineExceeded) },
			wantCode:  codes.DeadlineExceeded,
			wantMsg:   "context deadline exceeded",
			wantLevel: zapcore.InfoLevel,
		},
		{
			name:      "status passes through",
			handler:   func(context.Context) error { return status.Error(codes.ResourceExhausted, "slow down") },
			wantCode:  codes.ResourceExhausted,
			wantMsg:   "slow down",
			wantLevel: zapcore.InfoLevel,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, &fakeService{unary: func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
				if err := tt.handler(ctx); err != nil {
					return nil, err
				}
				return &testgrpc.SimpleResponse{}, nil
			}}, grpcserver.Options{})

			var trailer metadata.MD
			_, err := r.client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{}, grpc.Trailer(&trailer))
			st := status.Convert(err)
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Errorf("client got %v %q, want %v %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}

			entries := r.finished()
			if len(entries) != 1 {
				t.Fatalf("logged %d \"rpc finished\" entries, want 1", len(entries))
			}
			entry := entries[0]
			fields := entry.ContextMap()
			if entry.Level != tt.wantLevel || fields["method"] != "/grpc.testing.TestService/UnaryCall" ||
				fields["code"] != tt.wantCode.String() {
				t.Errorf("logged %v %v, want level %v, the method and code %v", entry.Level, fields, tt.wantLevel, tt.wantCode)
			}
			if _, ok := fields["duration"]; !ok {
				t.Errorf("log fields %v lack duration", fields)
			}
			if tt.check != nil {
				tt.check(t, st, trailer, entry)
			}
		})
	}
}

func TestPanicsBecomeInternalAndAreLogged(t *testing.T) {
	r := start(t, &fakeService{
		unary: func(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
			panic("unary went wrong")
		},
		stream: func(*testgrpc.StreamingOutputCallRequest, testgrpc.TestService_StreamingOutputCallServer) error {
			panic("stream went wrong")
		},
	}, grpcserver.Options{})

	_, unaryErr := r.client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
	stream, err := r.client.StreamingOutputCall(context.Background(), &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, streamErr := stream.Recv()

	for name, err := range map[string]error{"unary": unaryErr, "stream": streamErr} {
		if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
			t.Errorf("%s: client got %v %q, want Internal \"internal error\"", name, st.Code(), st.Message())
		}
	}

	panics := r.logs.FilterMessage("rpc panicked").AllUntimed()
	if len(panics) != 2 {
		t.Fatalf("logged %d panics, want 2", len(panics))
	}
	for i, want := range []string{"unary went wrong", "stream went wrong"} {
		fields := panics[i].ContextMap()
		if fields["panic"] != want || panics[i].Level != zapcore.ErrorLevel {
			t.Errorf("panic entry %d = %v %v, want error level with panic %q", i, panics[i].Level, fields, want)
		}
		if stack, _ := fields["stack"].(string); !strings.Contains(stack, "grpcserver_test.") {
			t.Errorf("panic entry %d stack does not reach the handler:\n%s", i, stack)
		}
	}
}

func TestStreamErrorsAreMapped(t *testing.T) {
	r := start(t, &fakeService{stream: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
			return err
		}
		return fmt.Errorf("watch: %w", domainerr.NotLeader("10.0.0.3:8300"))
	}}, grpcserver.Options{})

	stream, err := r.client.StreamingOutputCall(context.Background(), &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	_, err = stream.Recv()
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "not the leader; leader is at 10.0.0.3:8300" {
		t.Errorf("client got %v %q, want Unavailable naming the leader", st.Code(), st.Message())
	}
	if got := stream.Trailer().Get(grpcclient.LeaderTrailer); !slices.Equal(got, []string{"10.0.0.3:8300"}) {
		t.Errorf("trailer %s = %v, want [10.0.0.3:8300]", grpcclient.LeaderTrailer, got)
	}
}

func TestServeReportsHealthAndReflection(t *testing.T) {
	r := start(t, &fakeService{}, grpcserver.Options{})
	health := healthpb.NewHealthClient(r.conn)
	for _, service := range []string{"", testService} {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", service, resp.GetStatus(), err)
		}
	}

	info, err := reflectionpb.NewServerReflectionClient(r.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := info.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, testService) || !slices.Contains(names, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %v, want %s and grpc.health.v1.Health", names, testService)
	}
	_ = info.CloseSend()
}

func TestMaxRecvMsgSizeIsEnforced(t *testing.T) {
	r := start(t, &fakeService{unary: func(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
		return &testgrpc.SimpleResponse{}, nil
	}}, grpcserver.Options{MaxRecvMsgSize: 1024})

	small := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: make([]byte, 512)}}
	if _, err := r.client.UnaryCall(context.Background(), small); err != nil {
		t.Errorf("512-byte request: %v", err)
	}
	large := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: make([]byte, 2048)}}
	if _, err := r.client.UnaryCall(context.Background(), large); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("2 KiB request got %v, want ResourceExhausted", err)
	}
}

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
