package readiness

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// backend serves only gRPC health, with the given statuses by service name.
func backend(t *testing.T, statuses map[string]healthpb.HealthCheckResponse_ServingStatus) (*grpc.ClientConn, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	for name, st := range statuses {
		hs.SetServingStatus(name, st)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, hs
}

// TestReadyzFollowsTheBackendsReadiness: /readyz asked each backend for ""
// (the process serves gRPC), which said SERVING for a coordinator with no
// leader and a task queue without PostgreSQL, so the gateway said ready.
// It asks for the backends' readiness service now, and for "" only of a
// backend that has none.
func TestReadyzFollowsTheBackendsReadiness(t *testing.T) {
	serving, notServing := healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	queue, queueHealth := backend(t, map[string]healthpb.HealthCheckResponse_ServingStatus{"": serving, "liveness": serving, "readiness": notServing})
	legacy, _ := backend(t, map[string]healthpb.HealthCheckResponse_ServingStatus{"": serving})
	c := &Checker{Timeout: 5 * time.Second, Backends: map[string]*grpc.ClientConn{"taskqueue": queue, "legacy": legacy}}

	rep := c.Check(context.Background())
	if rep.Ready || rep.Backends["taskqueue"] != "NOT_SERVING" {
		t.Fatalf("backend whose readiness is NOT_SERVING: %+v, want not ready", rep)
	}
	if rep.Backends["legacy"] != "SERVING" {
		t.Fatalf("backend without a readiness service: %+v, want its \"\" status", rep)
	}
	queueHealth.SetServingStatus("readiness", serving)
	if rep := c.Check(context.Background()); !rep.Ready {
		t.Fatalf("every backend ready: %+v, want ready", rep)
	}
}
