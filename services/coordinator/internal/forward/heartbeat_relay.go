package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/domainerr"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// HeartbeatRelay carries one client's heartbeat stream on to the leader over
// a stream of its own. A follower opens it on the first beat it must pass on
// and keeps it while the leader stays the same, so that a client's stream
// survives leader changes without the client noticing. The zero value is
// ready; it is not safe for concurrent use (one per client stream).
type HeartbeatRelay struct {
	stream coordinatorv1.SessionService_HeartbeatClient
	cancel context.CancelFunc
	conn   *grpc.ClientConn // the leader the stream goes to
}

// Beat sends one heartbeat to the leader over conn, opening the relay stream
// with ctx (the forwarding context Route returned) if none is open or if the
// open one goes to another node (the leader changed), and returns the
// leader's answer. A leader that does not answer within timeout (frozen,
// partitioned, or a dead peer whose connection has not timed out yet) gets
// UNAVAILABLE: a relay never holds a beat longer than that. On any error the
// relay stream is closed, so the next beat opens a fresh one, to whichever
// node leads then.
func (r *HeartbeatRelay) Beat(ctx context.Context, conn *grpc.ClientConn, req *coordinatorv1.HeartbeatRequest, timeout time.Duration) (*coordinatorv1.HeartbeatResponse, error) {
	if r.stream != nil && r.conn != conn {
		r.Close()
	}
	if r.stream == nil {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := coordinatorv1.NewSessionServiceClient(conn).Heartbeat(sctx)
		if err != nil {
			cancel()
			return nil, err
		}
		r.stream, r.cancel, r.conn = stream, cancel, conn
	}
	late := time.AfterFunc(timeout, r.cancel)
	resp, err := r.exchange(req)
	if !late.Stop() {
		r.Close()
		return nil, domainerr.New(domainerr.Unavailable, fmt.Sprintf("the leader did not answer the beat within %s", timeout))
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return resp, nil
}

func (r *HeartbeatRelay) exchange(req *coordinatorv1.HeartbeatRequest) (*coordinatorv1.HeartbeatResponse, error) {
	if err := r.stream.Send(req); err != nil {
		return nil, r.sendError(err)
	}
	return r.stream.Recv()
}

// sendError is the leader's status when a send fails because the leader
// ended the stream: gRPC's Send then says only io.EOF, and the status that
// ended the stream (a failed session, a leader shutting down) is what Recv
// returns.
func (r *HeartbeatRelay) sendError(err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	if _, recvErr := r.stream.Recv(); recvErr != nil && !errors.Is(recvErr, io.EOF) {
		return recvErr
	}
	return domainerr.New(domainerr.Unavailable, "leader ended the heartbeat relay; reconnect")
}

// Close ends the relay stream, if one is open. The client's own stream is
// not affected.
func (r *HeartbeatRelay) Close() {
	if r.stream == nil {
		return
	}
	_ = r.stream.CloseSend()
	r.cancel()
	r.stream, r.cancel, r.conn = nil, nil, nil
}
