package client

import (
	"context"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// Reconnect policy of WatchSessions.
const (
	watchMinDelay = 50 * time.Millisecond
	watchMaxDelay = 2 * time.Second
)

// fnError carries the callback's error out of a watch so that it is told
// apart from the stream's own errors.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// WatchSessions calls fn for every event after afterIndex, reconnecting (with
// backoff) on any error except ctx end / fn's error / INVALID_ARGUMENT /
// PERMISSION_DENIED / UNAUTHENTICATED / UNIMPLEMENTED, resuming from the last
// index delivered so that fn sees each event once, in order. Returns when ctx
// ends (nil) or fn returns an error (that error); a status error when the
// server refuses the watch for good or the client is closed.
//
// fn runs on the caller's goroutine, one event at a time; a slow fn slows the
// stream, it loses nothing. req may be nil (watch everything from the start)
// and is not modified.
func (c *Client) WatchSessions(ctx context.Context, req *coordinatorv1.WatchSessionsRequest, fn func(*coordinatorv1.SessionEvent) error) error {
	next := &coordinatorv1.WatchSessionsRequest{}
	if req != nil {
		next = proto.CloneOf(req)
	}
	bo := backoff{min: watchMinDelay, max: watchMaxDelay}
	for {
		progressed, err := c.watchOnce(ctx, next, fn)
		if fe, ok := err.(fnError); ok {
			return fe.err
		}
		if ctx.Err() != nil {
			return nil
		}
		if c.closed() {
			return err
		}
		switch status.Code(err) {
		case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented:
			return err
		}
		if progressed {
			bo.reset()
		}
		delay := bo.next()
		c.logger.Info("session watch interrupted, reconnecting",
			zap.Uint64("after_index", next.GetAfterIndex()),
			zap.Duration("delay", delay),
			zap.Error(err))
		if !sleep(ctx, delay, nil) {
			return nil
		}
	}
}

// watchOnce runs one stream until it ends, delivering events to fn and
// advancing req.AfterIndex past each one delivered. It reports whether any
// event was delivered.
func (c *Client) watchOnce(ctx context.Context, req *coordinatorv1.WatchSessionsRequest, fn func(*coordinatorv1.SessionEvent) error) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.sessions.WatchSessions(ctx, req)
	if err != nil {
		return false, err
	}
	progressed := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			// io.EOF included: a server that ends a watch cleanly has not
			// ended the watcher's interest in events.
			return progressed, err
		}
		ev := resp.GetEvent()
		if ev == nil {
			continue
		}
		// A snapshot event states a session's current state and may carry an
		// index no newer than the resume point; it is always delivered.
		// Anything else at or before the resume point was seen already.
		if ev.GetIndex() <= req.GetAfterIndex() && ev.GetType() != coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_SNAPSHOT {
			c.logger.Warn("session watch repeated an event, skipping it",
				zap.Uint64("index", ev.GetIndex()),
				zap.Uint64("after_index", req.GetAfterIndex()))
			continue
		}
		if err := fn(ev); err != nil {
			return progressed, fnError{err}
		}
		progressed = true
		req.AfterIndex = max(req.GetAfterIndex(), ev.GetIndex())
	}
}
