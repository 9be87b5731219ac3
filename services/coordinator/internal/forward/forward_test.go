package forward

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// followerOf is a node that does not lead and knows the leader's address.
type followerOf string

func (followerOf) Leading() bool                      { return false }
func (l followerOf) LeaderAddress() (id, addr string) { return "leader", string(l) }

// A leader address that was down for a while is reached again within about
// ReconnectMaxDelay of coming back (regression: gRPC's default backoff grew
// towards 120 s, so a node that restarted and won an election stayed
// unreachable through its followers for seconds after it led).
func TestForwarderReachesALeaderThatCameBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // down: connections are refused

	f := New("follower", followerOf(addr))
	t.Cleanup(f.Close)
	check := func() error {
		ctx, conn, local, err := f.Route(context.Background())
		if err != nil || local {
			t.Fatalf("route: local %v, %v", local, err)
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	// Down for 6 s, forwarding all along: gRPC's default backoff would be
	// waiting 3-5 s between attempts by the end.
	for down := time.Now().Add(6 * time.Second); time.Now().Before(down); time.Sleep(200 * time.Millisecond) {
		if err := check(); err == nil {
			t.Fatal("a call reached a leader that is down")
		}
	}

	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on the leader's port (something else took it meanwhile?): %v", err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	back := time.Now()
	for check() != nil {
		if time.Since(back) > 5*time.Second {
			t.Fatal("the leader, back for 5 s, is still unreachable")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(back); took > ReconnectMaxDelay+time.Second {
		t.Errorf("reached the leader %v after it came back, want within %v", took.Round(time.Millisecond), ReconnectMaxDelay+time.Second)
	} else {
		t.Logf("reached the leader %v after it came back", took.Round(time.Millisecond))
	}
}
