package client

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// The real coordinator is another package's business; these fakes speak its
// protocol just far enough for each test to script the server's side.

// fakeSessions is a SessionService whose handlers the test supplies.
type fakeSessions struct {
	coordinatorv1.UnimplementedSessionServiceServer
	getSession    func(context.Context, *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error)
	listSessions  func(context.Context, *coordinatorv1.ListSessionsRequest) (*coordinatorv1.ListSessionsResponse, error)
	watchSessions func(*coordinatorv1.WatchSessionsRequest, grpc.ServerStreamingServer[coordinatorv1.WatchSessionsResponse]) error
	heartbeat     func(grpc.BidiStreamingServer[coordinatorv1.HeartbeatRequest, coordinatorv1.HeartbeatResponse]) error
}

func (f *fakeSessions) GetSession(ctx context.Context, req *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
	if f.getSession == nil {
		return f.UnimplementedSessionServiceServer.GetSession(ctx, req)
	}
	return f.getSession(ctx, req)
}

func (f *fakeSessions) ListSessions(ctx context.Context, req *coordinatorv1.ListSessionsRequest) (*coordinatorv1.ListSessionsResponse, error) {
	if f.listSessions == nil {
		return f.UnimplementedSessionServiceServer.ListSessions(ctx, req)
	}
	return f.listSessions(ctx, req)
}

func (f *fakeSessions) WatchSessions(req *coordinatorv1.WatchSessionsRequest, stream grpc.ServerStreamingServer[coordinatorv1.WatchSessionsResponse]) error {
	if f.watchSessions == nil {
		return f.UnimplementedSessionServiceServer.WatchSessions(req, stream)
	}
	return f.watchSessions(req, stream)
}

func (f *fakeSessions) Heartbeat(stream grpc.BidiStreamingServer[coordinatorv1.HeartbeatRequest, coordinatorv1.HeartbeatResponse]) error {
	if f.heartbeat == nil {
		return f.UnimplementedSessionServiceServer.Heartbeat(stream)
	}
	return f.heartbeat(stream)
}

// fakeCluster is a ClusterService that answers status with a fixed leader.
type fakeCluster struct {
	coordinatorv1.UnimplementedClusterServiceServer
}

func (fakeCluster) GetClusterStatus(context.Context, *coordinatorv1.GetClusterStatusRequest) (*coordinatorv1.GetClusterStatusResponse, error) {
	return &coordinatorv1.GetClusterStatusResponse{Leader: &coordinatorv1.LeaderInfo{NodeId: "node-1"}, Term: 3}, nil
}

// authRecorder remembers the authorization metadata each method arrived with.
type authRecorder struct {
	mu    sync.Mutex
	calls map[string][]string
}

func (a *authRecorder) record(ctx context.Context, method string) {
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls == nil {
		a.calls = map[string][]string{}
	}
	a.calls[method] = md.Get("authorization")
}

func (a *authRecorder) get(method string) ([]string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.calls[method]
	return v, ok
}

func (a *authRecorder) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			a.record(ctx, info.FullMethod)
			return handler(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			a.record(ss.Context(), info.FullMethod)
			return handler(srv, ss)
		}),
	}
}

// startServer serves the given services on a free loopback port until the
// test ends, and returns the address and the server (to stop it early).
func startServer(t *testing.T, sessions coordinatorv1.SessionServiceServer, cluster coordinatorv1.ClusterServiceServer, opts ...grpc.ServerOption) (string, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	if sessions != nil {
		coordinatorv1.RegisterSessionServiceServer(s, sessions)
	}
	if cluster != nil {
		coordinatorv1.RegisterClusterServiceServer(s, cluster)
	}
	coordinatorv1.RegisterLockServiceServer(s, coordinatorv1.UnimplementedLockServiceServer{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-served
	})
	return lis.Addr().String(), s
}

func newTestClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testContext is bounded so that a broken test fails instead of hanging.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// receive waits for one value from ch, failing the test after a while.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually polls cond until it holds, failing the test after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
