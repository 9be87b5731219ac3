package grpcserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// TestHealthListenerAnswersInPlaintextWhileTheMainPortIsTLSOnly serves the
// main port over TLS with a plaintext health-only listener beside it: a
// plaintext client gets the same statuses there, named services included,
// is refused on the main port, and gets UNIMPLEMENTED for anything but health
// on the health port.
func TestHealthListenerAnswersInPlaintextWhileTheMainPortIsTLSOnly(t *testing.T) {
	ca, err := tlsconfig.NewAuthority("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ca.Ephemeral("svc", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	healthLis := grpctest.Listen(t)
	srv := grpcserver.New(grpcserver.Options{Name: "tls", TLS: src, HealthListener: healthLis})
	srv.Health().SetServingStatus("readiness", healthpb.HealthCheckResponse_NOT_SERVING)
	srv.Health().SetServingStatus("liveness", healthpb.HealthCheckResponse_SERVING)
	lis := grpctest.Listen(t)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { stop(); <-served })

	dial := func(addr string) *grpc.ClientConn {
		conn, err := grpcclient.Dial(addr, grpc.WithDisableRetry())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	plainHealth := dial(healthLis.Addr().String())
	check := func(conn *grpc.ClientConn, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{Service: service})
		return resp.GetStatus(), err
	}
	// Serve sets "" SERVING as it starts; poll until it has.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := check(plainHealth, "")
		if err == nil && st == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health port: Check(\"\") = %v, %v; want SERVING", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for service, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"readiness": healthpb.HealthCheckResponse_NOT_SERVING,
		"liveness":  healthpb.HealthCheckResponse_SERVING,
	} {
		if st, err := check(plainHealth, service); err != nil || st != want {
			t.Errorf("health port: Check(%q) = %v, %v; want %v", service, st, err, want)
		}
	}
	srv.Health().SetServingStatus("readiness", healthpb.HealthCheckResponse_SERVING)
	if st, err := check(plainHealth, "readiness"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health port after the status changed: Check(readiness) = %v, %v; want SERVING", st, err)
	}
	if _, err := check(plainHealth, "no.such.Service"); status.Code(err) != codes.NotFound {
		t.Errorf("health port: Check(unknown) = %v, want NOT_FOUND", err)
	}

	// Anything but health is UNIMPLEMENTED on the health port, even the
	// reflection the main port serves.
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := grpc_reflection_v1.NewServerReflectionClient(plainHealth).ServerReflectionInfo(rctx)
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("health port: reflection = %v, want UNIMPLEMENTED", err)
	}

	// The main port stays TLS-only.
	if _, err := check(dial(lis.Addr().String()), ""); status.Code(err) != codes.Unavailable {
		t.Errorf("main port in plaintext: Check = %v, want UNAVAILABLE (refused)", err)
	}

	// Serve closes the health port when it returns.
	stop()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	served <- nil
	if st, err := check(dial(healthLis.Addr().String()), ""); err == nil {
		t.Errorf("health port after Serve returned: Check = %v, want an error (closed)", st)
	}
}

// TestHealthListenAddrThatCannotBeListenedOnFailsServe checks that a busy
// HealthListenAddr stops Serve with an error naming it.
func TestHealthListenAddrThatCannotBeListenedOnFailsServe(t *testing.T) {
	busy := grpctest.Listen(t)
	srv := grpcserver.New(grpcserver.Options{Name: "busy", HealthListenAddr: busy.Addr().String()})
	err := srv.Serve(context.Background(), grpctest.Listen(t))
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("Serve = %v, want an error naming %s", err, busy.Addr())
	}
}
