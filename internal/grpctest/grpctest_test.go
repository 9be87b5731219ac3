package grpctest_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/gaia-platform/gaia/internal/grpctest"
)

type echoService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (echoService) UnaryCall(_ context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: req.GetPayload()}, nil
}

func TestServeConnectsToTheRegisteredServices(t *testing.T) {
	conn := grpctest.Serve(t, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, echoService{}) })

	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("ping")}}
	resp, err := testgrpc.NewTestServiceClient(conn).UnaryCall(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.GetPayload().GetBody()); got != "ping" {
		t.Errorf("echo returned %q, want ping", got)
	}
	health, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "grpc.testing.TestService"})
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v; want SERVING", health.GetStatus(), err)
	}
	if host, _, _ := net.SplitHostPort(conn.Target()); host != "127.0.0.1" {
		t.Errorf("target %q, want a loopback address", conn.Target())
	}
}

// cleanupRecorder is a testing.TB whose cleanups and errors the test
// inspects instead of the real test runner.
type cleanupRecorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *cleanupRecorder) Helper()          {}
func (r *cleanupRecorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *cleanupRecorder) Errorf(f string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(f, a...))
}

func (r *cleanupRecorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestServeFailsTheTestWhenTheServerFails(t *testing.T) {
	rec := &cleanupRecorder{TB: t}
	// Stopping the server before it serves makes Serve return an error.
	conn := grpctest.Serve(rec, func(s *grpc.Server) { s.Stop() })
	// grpc closes the listener when Serve finds the server stopped: wait for
	// that, so that the failure is there before the test ends.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", conn.Target())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the stopped server's listener is still open after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec.runCleanups()

	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "server stopped with an error") {
		t.Errorf("test errors = %q, want one saying the server stopped with an error", rec.errors)
	}
}

func TestServeShutsDownCleanly(t *testing.T) {
	rec := &cleanupRecorder{TB: t}
	conn := grpctest.Serve(rec, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, echoService{}) })
	if _, err := testgrpc.NewTestServiceClient(conn).UnaryCall(context.Background(), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	target := conn.Target()
	rec.runCleanups()

	if len(rec.errors) != 0 {
		t.Errorf("test errors = %q, want none", rec.errors)
	}
	if c, err := net.Dial("tcp", target); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the test", target)
	}
}

func TestListenGivesDistinctLoopbackPorts(t *testing.T) {
	a, b := grpctest.Listen(t), grpctest.Listen(t)
	for _, lis := range []net.Listener{a, b} {
		addr := lis.Addr().(*net.TCPAddr)
		if !addr.IP.IsLoopback() || addr.Port == 0 {
			t.Errorf("listening on %v, want a loopback address with a port", addr)
		}
	}
	if a.Addr().String() == b.Addr().String() {
		t.Errorf("two listeners on the same address %v", a.Addr())
	}
}

func TestRebindWaitsForATakenPortToComeFree(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := held.Addr().String()
	listen := func() (net.Listener, error) { return net.Listen("tcp", addr) }
	if _, err := listen(); err == nil {
		t.Fatal("a second listen on a held port succeeded; the test cannot tell anything")
	}

	tries := 0
	lis, err := grpctest.Rebind(func() (net.Listener, error) {
		tries++
		if tries == 3 { // the holder lets go while Rebind is retrying
			_ = held.Close()
		}
		return listen()
	})
	if err != nil {
		t.Fatalf("Rebind after the port came free: %v", err)
	}
	defer lis.Close()
	if lis.Addr().String() != addr {
		t.Errorf("Rebind listened on %s, want %s", lis.Addr(), addr)
	}
	if tries < 3 {
		t.Errorf("Rebind tried %d times; the port was held for the first two", tries)
	}
}

func TestRebindReturnsOtherErrorsAtOnce(t *testing.T) {
	tries := 0
	_, err := grpctest.Rebind(func() (net.Listener, error) {
		tries++
		return net.Listen("tcp", "127.0.0.1:notaport")
	})
	if err == nil || tries != 1 {
		t.Errorf("Rebind with a bad address: err %v after %d tries, want an error after 1", err, tries)
	}
}
