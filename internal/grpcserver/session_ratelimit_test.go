package grpcserver_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// sessionServer acknowledges every heartbeat and grants every lock: what
// comes back is the interceptors' verdict.
type sessionServer struct {
	coordinatorv1.UnimplementedSessionServiceServer
	coordinatorv1.UnimplementedLockServiceServer
}

func (sessionServer) Heartbeat(stream grpc.BidiStreamingServer[coordinatorv1.HeartbeatRequest, coordinatorv1.HeartbeatResponse]) error {
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		if err := stream.Send(&coordinatorv1.HeartbeatResponse{}); err != nil {
			return err
		}
	}
}

func (sessionServer) AcquireLock(context.Context, *coordinatorv1.AcquireLockRequest) (*coordinatorv1.AcquireLockResponse, error) {
	return &coordinatorv1.AcquireLockResponse{}, nil
}

// sessionLimitServer serves sessionServer behind the real interceptors with
// a small session bucket (burst calls, then one every 100 s) and returns its
// address.
func sessionLimitServer(t *testing.T, burst int) string {
	t.Helper()
	keys := authtest.New(t)
	a := auth.NewAuthorizer(auth.Options{Verifier: keys.Verifier, Limits: auth.Limits{Rate: 0.01, Burst: burst}})
	srv := grpcserver.New(grpcserver.Options{Name: "coordinator", Auth: a, ShutdownTimeout: time.Second})
	coordinatorv1.RegisterSessionServiceServer(srv.GRPC(), sessionServer{})
	coordinatorv1.RegisterLockServiceServer(srv.GRPC(), sessionServer{})
	lis := grpctest.Listen(t)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { stop(); <-served })
	return lis.Addr().String()
}

// dialFrom connects to addr from the loopback address from (127.0.0.2 is
// another host as far as the server can tell).
func dialFrom(t *testing.T, addr, from string) *grpc.ClientConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := grpcclient.Dial(addr, grpc.WithDisableRetry(), grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", a)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Regression: session calls were counted against the session_id they name,
// before the session token was checked, so a caller naming a new id per call
// got a fresh bucket every time and was never limited.
func TestMadeUpSessionIDsDoNotEscapeTheLimit(t *testing.T) {
	const burst = 5
	addr := sessionLimitServer(t, burst)
	locks := coordinatorv1.NewLockServiceClient(dialFrom(t, addr, "127.0.0.2"))
	for i := range burst + 3 {
		_, err := locks.AcquireLock(ctxT(t), &coordinatorv1.AcquireLockRequest{
			Key: "k", SessionId: fmt.Sprintf("made-up-%d", i), SessionToken: "guess",
		})
		want := codes.OK
		if i >= burst {
			want = codes.ResourceExhausted
		}
		if got := status.Code(err); got != want {
			t.Fatalf("call %d, naming a session id never used before: %v (%v), want %v", i, got, err, want)
		}
	}
	// A heartbeat stream naming yet another id shares the same bucket.
	hb, err := coordinatorv1.NewSessionServiceClient(dialFrom(t, addr, "127.0.0.2")).Heartbeat(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Send(&coordinatorv1.HeartbeatRequest{SessionId: "made-up-last", SessionToken: "guess"}); err != nil {
		t.Fatal(err)
	}
	if _, err := hb.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("heartbeat naming a new session id past the limit: %v, want ResourceExhausted", err)
	}
}

// Regression: a flood of calls naming a real session's id (without its
// token) emptied that session's bucket, and the session's own heartbeats
// were refused. The flood now costs its sender's address only.
func TestFloodNamingARealSessionDoesNotUseUpItsBucket(t *testing.T) {
	const burst = 5
	addr := sessionLimitServer(t, burst)
	const victim = "real-session"

	attacker := coordinatorv1.NewSessionServiceClient(dialFrom(t, addr, "127.0.0.2"))
	flood, err := attacker.Heartbeat(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for i := 0; i < 10*burst && !refused; i++ {
		if err := flood.Send(&coordinatorv1.HeartbeatRequest{SessionId: victim, SessionToken: "guess"}); err != nil {
			t.Fatal(err)
		}
		_, err := flood.Recv()
		switch status.Code(err) {
		case codes.OK:
		case codes.ResourceExhausted:
			refused = true
		default:
			t.Fatalf("flood heartbeat %d: %v", i, err)
		}
	}
	if !refused {
		t.Fatalf("%d heartbeats from one address were all accepted; the flood was not limited", 10*burst)
	}

	// The real session, on its own host, beats its full burst.
	hb, err := coordinatorv1.NewSessionServiceClient(dialFrom(t, addr, "127.0.0.1")).Heartbeat(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range burst {
		if err := hb.Send(&coordinatorv1.HeartbeatRequest{SessionId: victim, SessionToken: "the-real-token"}); err != nil {
			t.Fatal(err)
		}
		if _, err := hb.Recv(); err != nil {
			t.Fatalf("the real session's heartbeat %d after the flood: %v, want OK", i, err)
		}
	}
}

// An app's credential gets its role's bucket (AUTH_APP_RATE_BURST), an
// operator's the general one, through the real interceptors.
func TestRateLimitPerRole(t *testing.T) {
	keys := authtest.New(t)
	a := auth.NewAuthorizer(auth.Options{Verifier: keys.Verifier, Limits: auth.Limits{Rate: 0.01, Burst: 2,
		Roles: map[auth.Role]auth.RoleLimits{auth.RoleApp: {Burst: 6}}}})
	conn := matrixServer(t, a)
	calls := func(method, tok string) int {
		md := gaiaMethods(t)[method]
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		for i := range 20 {
			err := conn.Invoke(ctx, method, dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output()))
			switch status.Code(err) {
			case codes.OK:
			case codes.ResourceExhausted:
				return i
			default:
				t.Fatalf("%s: %v", method, err)
			}
		}
		return 20
	}
	app := keys.Token(t, auth.Spec{Role: auth.RoleApp, Name: "app", AppID: "a1", TTL: time.Hour})
	op := keys.Token(t, auth.Spec{Role: auth.RoleOperator, Name: "ops", TTL: time.Hour})
	if got := calls("/gaia.metrics.v1.MetricsService/RecordMetrics", app); got != 6 {
		t.Errorf("app credential: %d calls before RESOURCE_EXHAUSTED, want 6 (its role's burst)", got)
	}
	if got := calls("/gaia.coordinator.v1.ClusterService/GetClusterStatus", op); got != 2 {
		t.Errorf("operator credential: %d calls before RESOURCE_EXHAUSTED, want 2 (the general burst)", got)
	}
}
