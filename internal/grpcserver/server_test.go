package grpcserver_test

import (
	"context"
	"errors"
	"fmt"
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
