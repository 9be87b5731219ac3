package client

import (
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// Heartbeater: reconnecting, failing over, and reporting a lost session.

// beat is one heartbeat as a fake server saw it.
type beat struct {
	server string
	stream int32
	req    *coordinatorv1.HeartbeatRequest
}

// heartbeatServer is a fake Heartbeat handler that reports every beat and
// every stream the client ended cleanly, acknowledges beats, and ends stream
// number endStream after its endAfter-th beat (first when 0) with endErr.
type heartbeatServer struct {
	name      string
	beats     chan beat
	cleanEnds chan int32
	streams   atomic.Int32
	endStream int32
	endAfter  int
	endErr    error
}

func newHeartbeatServer(name string) *heartbeatServer {
	return &heartbeatServer{name: name, beats: make(chan beat, 1000), cleanEnds: make(chan int32, 10)}
}

func (s *heartbeatServer) handle(stream grpc.BidiStreamingServer[coordinatorv1.HeartbeatRequest, coordinatorv1.HeartbeatResponse]) error {
	n := s.streams.Add(1)
	for i := 1; ; i++ {
		req, err := stream.Recv()
		if err != nil {
			if stream.Context().Err() == nil {
				s.cleanEnds <- n
			}
			return nil
		}
		s.beats <- beat{s.name, n, req}
		if n == s.endStream && i >= max(s.endAfter, 1) {
			return s.endErr
		}
		err = stream.Send(&coordinatorv1.HeartbeatResponse{
			LeaseExpiresAt: timestamppb.Now(),
			Leader:         &coordinatorv1.LeaderInfo{NodeId: s.name, GrpcAddress: s.name + ":7001"},
			Status:         coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE,
		})
		if err != nil {
			return err
		}
	}
}

func TestHeartbeaterReconnectsAfterTheStreamIsDropped(t *testing.T) {
	for _, end := range []error{
		status.Error(codes.Unavailable, "server is shutting down"),
		status.Error(codes.Canceled, "context canceled"),
		nil, // the server ends the stream with OK
		status.Error(codes.Internal, "internal error"),
	} {
		t.Run(status.Code(end).String(), func(t *testing.T) {
			hb := newHeartbeatServer("n1")
			hb.endStream, hb.endErr = 1, end
			addr, _ := startServer(t, &fakeSessions{heartbeat: hb.handle}, nil)
			c := newTestClient(t, Options{Addrs: []string{addr}})

			var tasks atomic.Int32
			tasks.Store(2)
			h := c.StartHeartbeat(testContext(t), "s-1", "tok", 20*time.Millisecond, func() (int32, string) {
				return tasks.Load(), "running tests"
			})
			defer h.Stop()

			first := receive(t, hb.beats, "the first beat")
			if first.stream != 1 {
				t.Fatalf("first beat on stream %d, want 1", first.stream)
			}
			if r := first.req; r.GetSessionId() != "s-1" || r.GetSessionToken() != "tok" || r.GetCurrentTaskCount() != 2 || r.GetActivity() != "running tests" {
				t.Errorf("beat = %v, want the session's id, token and status", r)
			}
			// Beats keep coming on a new stream.
			for i := 0; i < 3; i++ {
				b := receive(t, hb.beats, "a beat after the reconnect")
				if b.stream != 2 {
					t.Fatalf("beat on stream %d, want 2", b.stream)
				}
			}
			select {
			case <-h.Lost():
				t.Fatalf("Lost after a transient error: %v", h.Err())
			default:
			}
			eventually(t, "an acknowledged lease from n1", func() bool {
				lease, leader := h.LastAck()
				return !lease.IsZero() && leader.GetNodeId() == "n1"
			})

			h.Stop()
			if n := receive(t, hb.cleanEnds, "the clean end of the stream"); n != 2 {
				t.Errorf("stream %d ended cleanly, want 2", n)
			}
			if h.Err() != nil {
				t.Errorf("Err after Stop = %v, want nil", h.Err())
			}
		})
	}
}

func TestHeartbeaterBeatsAtOnceAfterReconnecting(t *testing.T) {
	hb := newHeartbeatServer("n1")
	hb.endStream, hb.endErr = 1, status.Error(codes.Unavailable, "no leader elected yet")
	addr, _ := startServer(t, &fakeSessions{heartbeat: hb.handle}, nil)
	c := newTestClient(t, Options{Addrs: []string{addr}})

	// With an hour between beats, only the beat sent on connecting can arrive.
	h := c.StartHeartbeat(testContext(t), "s-1", "tok", time.Hour, nil)
	defer h.Stop()
	receive(t, hb.beats, "the first beat")
	if b := receive(t, hb.beats, "the beat on reconnecting"); b.stream != 2 {
		t.Errorf("beat on stream %d, want 2", b.stream)
	}
}

func TestHeartbeaterReportsTheSessionLost(t *testing.T) {
	for _, code := range []codes.Code{codes.FailedPrecondition, codes.NotFound, codes.Unauthenticated, codes.PermissionDenied} {
		t.Run(code.String(), func(t *testing.T) {
			hb := newHeartbeatServer("n1")
			hb.endStream, hb.endAfter, hb.endErr = 1, 2, status.Error(code, "session s-1 failed")
			addr, _ := startServer(t, &fakeSessions{heartbeat: hb.handle}, nil)
			c := newTestClient(t, Options{Addrs: []string{addr}})

			h := c.StartHeartbeat(testContext(t), "s-1", "tok", 20*time.Millisecond, nil)
			defer h.Stop()
			receive(t, hb.beats, "the first beat")
			receive(t, hb.beats, "the second beat")
			receive(t, h.Lost(), "Lost")
			if err := h.Err(); status.Code(err) != code || status.Convert(err).Message() != "session s-1 failed" {
				t.Errorf("Err = %v, want the server's %v", err, code)
			}
			h.Stop()
		})
	}
}

func TestHeartbeaterFailsOverWhenItsServerStops(t *testing.T) {
	hbA, hbB := newHeartbeatServer("a"), newHeartbeatServer("b")
	addrA, serverA := startServer(t, &fakeSessions{heartbeat: hbA.handle}, nil)
	addrB, serverB := startServer(t, &fakeSessions{heartbeat: hbB.handle}, nil)
	c := newTestClient(t, Options{Addrs: []string{addrA, addrB}})

	h := c.StartHeartbeat(testContext(t), "s-1", "tok", 20*time.Millisecond, nil)
	defer h.Stop()

	var first beat
	var other *heartbeatServer
	select {
	case first = <-hbA.beats:
		serverA.Stop()
		other = hbB
	case first = <-hbB.beats:
		serverB.Stop()
		other = hbA
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the first beat")
	}
	for i := 0; i < 3; i++ {
		if b := receive(t, other.beats, "a beat on the surviving server"); b.server == first.server {
			t.Fatalf("beat reached stopped server %s", b.server)
		}
	}
	select {
	case <-h.Lost():
		t.Fatalf("Lost after failover: %v", h.Err())
	default:
	}
}

// A stream on which beats go unanswered (a frozen node, whose connection
// stays up) is given up after the ack timeout and opened again (regression:
// the client waited on a frozen node for as long as TCP let it, and its
// session was failed meanwhile).
func TestHeartbeaterGivesUpAStreamThatStopsAnswering(t *testing.T) {
	hb := newHeartbeatServer("n1")
	silentBeats := make(chan struct{}, 100)
	handle := func(stream grpc.BidiStreamingServer[coordinatorv1.HeartbeatRequest, coordinatorv1.HeartbeatResponse]) error {
		if hb.streams.Load() > 0 {
			return hb.handle(stream)
		}
		hb.streams.Add(1) // stream 1 is frozen: it takes beats and says nothing
		for {
			if _, err := stream.Recv(); err != nil {
				return nil
			}
			silentBeats <- struct{}{}
		}
	}
	addr, _ := startServer(t, &fakeSessions{heartbeat: handle}, nil)
	c := newTestClient(t, Options{Addrs: []string{addr}})

	start := time.Now()
	h := c.StartHeartbeat(testContext(t), "s-1", "tok", 50*time.Millisecond, nil)
	defer h.Stop()
	receive(t, silentBeats, "a beat on the frozen stream")
	if b := receive(t, hb.beats, "a beat on a new stream"); b.stream != 2 {
		t.Fatalf("beat on stream %d, want 2", b.stream)
	}
	if took := time.Since(start); took < 75*time.Millisecond {
		t.Errorf("gave up the stream after %s, before the 75ms ack timeout", took)
	}
	eventually(t, "an acknowledgement on the new stream", func() bool {
		_, leader := h.LastAck()
		return leader.GetNodeId() == "n1"
	})
	select {
	case <-h.Lost():
		t.Fatalf("Lost: %v", h.Err())
	default:
	}
}
