package forward

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpctest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// leaderEndingStreams answers one beat on each stream, then ends the stream
// with end: what a leader does when the session fails after a beat.
type leaderEndingStreams struct {
	coordinatorv1.UnimplementedSessionServiceServer
	end error
}

func (l *leaderEndingStreams) Heartbeat(stream coordinatorv1.SessionService_HeartbeatServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&coordinatorv1.HeartbeatResponse{}); err != nil {
		return err
	}
	return l.end
}

// endedStream is a relay stream the leader has already ended with end: as
// gRPC does then, Send says only io.EOF and Recv returns the status.
type endedStream struct {
	grpc.ClientStream
	end error
}

func (e *endedStream) Send(*coordinatorv1.HeartbeatRequest) error { return io.EOF }
func (e *endedStream) Recv() (*coordinatorv1.HeartbeatResponse, error) {
	return nil, e.end
}
func (e *endedStream) CloseSend() error { return nil }

// A relay whose leader ended the stream reports the leader's status, not a
// generic "unavailable" (regression: relayError once ignored the stream and
// so dropped the status it promised to return).
func TestHeartbeatRelayReportsTheStatusTheLeaderEndedWith(t *testing.T) {
	leaderErr := status.Error(codes.FailedPrecondition, "session has failed")
	relay := HeartbeatRelay{stream: &endedStream{end: leaderErr}, cancel: func() {}}
	_, err := relay.Beat(context.Background(), nil, &coordinatorv1.HeartbeatRequest{SessionId: "s-1", SessionToken: "tok"}, time.Second)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("beat = %v, want the leader's FAILED_PRECONDITION", err)
	}
	if relay.stream != nil {
		t.Error("the relay kept a stream the leader had ended")
	}

	// A stream that ended cleanly, with no status, says the leader left.
	relay = HeartbeatRelay{stream: &endedStream{end: io.EOF}, cancel: func() {}}
	if _, err := relay.Beat(context.Background(), nil, &coordinatorv1.HeartbeatRequest{}, time.Second); domainerr.KindOf(err) != domainerr.Unavailable {
		t.Fatalf("beat on a cleanly ended stream = %v, want UNAVAILABLE", err)
	}
}

// A relay over a real connection answers beats and, once the leader ends its
// stream, reports the leader's status and opens a fresh stream next time.
func TestHeartbeatRelayReopensAfterTheLeaderEndsItsStream(t *testing.T) {
	leaderErr := status.Error(codes.FailedPrecondition, "session has failed")
	conn := grpctest.Serve(t, func(s *grpc.Server) {
		coordinatorv1.RegisterSessionServiceServer(s, &leaderEndingStreams{end: leaderErr})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var relay HeartbeatRelay
	defer relay.Close()
	req := &coordinatorv1.HeartbeatRequest{SessionId: "s-1", SessionToken: "tok"}
	if _, err := relay.Beat(ctx, conn, req, time.Second); err != nil {
		t.Fatalf("first beat: %v", err)
	}
	if _, err := relay.Beat(ctx, conn, req, time.Second); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second beat = %v, want the leader's FAILED_PRECONDITION", err)
	}
	if _, err := relay.Beat(ctx, conn, req, time.Second); err != nil {
		t.Fatalf("beat on a fresh relay stream: %v", err)
	}
}

// silentLeader takes beats and never answers them: a frozen leader, as its
// followers see it, whose TCP connection stays up.
type silentLeader struct {
	coordinatorv1.UnimplementedSessionServiceServer
}

func (silentLeader) Heartbeat(stream coordinatorv1.SessionService_HeartbeatServer) error {
	<-stream.Context().Done()
	return stream.Context().Err()
}

// answeringLeader acknowledges every beat with its own id.
type answeringLeader struct {
	coordinatorv1.UnimplementedSessionServiceServer
	id string
}

func (l answeringLeader) Heartbeat(stream coordinatorv1.SessionService_HeartbeatServer) error {
	for {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
		if err := stream.Send(&coordinatorv1.HeartbeatResponse{Leader: &coordinatorv1.LeaderInfo{NodeId: l.id}}); err != nil {
			return err
		}
	}
}

// A leader that never answers costs a beat its timeout, not the session
// (regression: a relay waited on a frozen leader with no deadline, and the
// session was failed while its client beat on).
func TestHeartbeatRelayGivesUpOnALeaderThatDoesNotAnswer(t *testing.T) {
	conn := grpctest.Serve(t, func(s *grpc.Server) { coordinatorv1.RegisterSessionServiceServer(s, silentLeader{}) })
	var relay HeartbeatRelay
	defer relay.Close()
	start := time.Now()
	_, err := relay.Beat(context.Background(), conn, &coordinatorv1.HeartbeatRequest{SessionId: "s-1", SessionToken: "tok"}, 100*time.Millisecond)
	if domainerr.KindOf(err) != domainerr.Unavailable {
		t.Fatalf("beat to a silent leader = %v, want UNAVAILABLE", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the relay held the beat %s with a 100ms timeout", took)
	}
	if relay.stream != nil {
		t.Error("the relay kept the stream to the silent leader")
	}
}

// When the leader changes, the next beat goes to the new leader, not down
// the old stream (regression: the relay kept its first leader for good).
func TestHeartbeatRelayFollowsALeaderChange(t *testing.T) {
	old := grpctest.Serve(t, func(s *grpc.Server) { coordinatorv1.RegisterSessionServiceServer(s, answeringLeader{id: "old"}) })
	next := grpctest.Serve(t, func(s *grpc.Server) { coordinatorv1.RegisterSessionServiceServer(s, answeringLeader{id: "new"}) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var relay HeartbeatRelay
	defer relay.Close()
	req := &coordinatorv1.HeartbeatRequest{SessionId: "s-1", SessionToken: "tok"}
	for _, want := range []struct {
		conn *grpc.ClientConn
		id   string
	}{{old, "old"}, {old, "old"}, {next, "new"}} {
		resp, err := relay.Beat(ctx, want.conn, req, time.Second)
		if err != nil || resp.GetLeader().GetNodeId() != want.id {
			t.Fatalf("beat = %v, %v; want an ack from %q", resp, err, want.id)
		}
	}
}
