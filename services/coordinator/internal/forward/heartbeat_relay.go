package forward

import (
	"context"
	"errors"
	"io"

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
}

// Beat sends one heartbeat to the leader over conn, opening the relay stream
// with ctx (the forwarding context Route returned) if none is open, and
// returns the leader's answer. On any error the relay stream is closed, so
// the next beat opens a fresh one, to whichever node leads then.
func (r *HeartbeatRelay) Beat(ctx context.Context, conn *grpc.ClientConn, req *coordinatorv1.HeartbeatRequest) (*coordinatorv1.HeartbeatResponse, error) {
	if r.stream == nil {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := coordinatorv1.NewSessionServiceClient(conn).Heartbeat(sctx)
		if err != nil {
			cancel()
			return nil, err
		}
		r.stream, r.cancel = stream, cancel
	}
	if err := r.stream.Send(req); err != nil {
		err = r.sendError(err)
		r.Close()
		return nil, err
	}
	resp, err := r.stream.Recv()
	if err != nil {
		r.Close()
		return nil, err
	}
	return resp, nil
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
	r.stream, r.cancel = nil, nil
}
