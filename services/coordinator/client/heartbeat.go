package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/background"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

const (
	// defaultHeartbeatInterval is used when StartHeartbeat is given none; it
	// matches the coordinator's SESSION_HEARTBEAT_INTERVAL default.
	defaultHeartbeatInterval = 10 * time.Second
	// heartbeatCloseWait is how long Stop lets the server end the stream after
	// the client said it is done, before cutting it.
	heartbeatCloseWait = 2 * time.Second
	// maxActivityBytes is the server's limit on HeartbeatRequest.activity;
	// longer activity is cut rather than have every beat refused.
	maxActivityBytes = 256
)

// errHeartbeatStopped ends a stream that Stop or the caller's context ended.
var errHeartbeatStopped = errors.New("heartbeat stopped")

// HeartbeatStatus reports what a session is doing, for each beat. It is called
// from the heartbeater's goroutine, so it must be safe to call concurrently
// with the rest of the program.
type HeartbeatStatus func() (currentTaskCount int32, activity string)

// Heartbeater keeps one session's heartbeat stream up across leader changes
// and reconnects. Build it with Client.StartHeartbeat.
type Heartbeater struct {
	client    *Client
	logger    *zap.Logger
	sessionID string
	token     string
	interval  time.Duration
	status    HeartbeatStatus

	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	lost     chan struct{}

	mu             sync.Mutex
	err            error
	leaseExpiresAt time.Time
	leader         *coordinatorv1.LeaderInfo
	serverInterval time.Duration
}

// StartHeartbeat starts beating for a session every interval (10 s when not
// positive), until Stop, the end of ctx, or the server saying the session is
// gone (see Lost). status may be nil, which reports no tasks and no activity.
//
// A beat is sent as soon as a stream opens and then every interval, or more
// often when the server's acknowledgements ask for a shorter interval. After a
// transient error (UNAVAILABLE, a broken connection, a stream the server
// cancelled or ended) the stream is opened again, on whichever node answers,
// after a backoff that stays under half the interval, so that a reconnect does
// not cost the lease. A beat not acknowledged within one and a half intervals
// counts as such an error: the stream is cut and opened again.
func (c *Client) StartHeartbeat(ctx context.Context, sessionID, token string, interval time.Duration, status HeartbeatStatus) *Heartbeater {
	if interval <= 0 {
		interval = defaultHeartbeatInterval
	}
	if status == nil {
		status = func() (int32, string) { return 0, "" }
	}
	ctx, cancel := context.WithCancel(ctx)
	h := &Heartbeater{
		client:    c,
		logger:    c.logger.With(zap.String("session_id", sessionID)),
		sessionID: sessionID,
		token:     token,
		interval:  interval,
		status:    status,
		cancel:    cancel,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		lost:      make(chan struct{}),
	}
	go h.run(ctx)
	return h
}

// Lost is closed when the server says the session is failed, deregistered,
// unknown or not this token's: the session is gone for good and the
// heartbeater has stopped. Register a new session to carry on.
func (h *Heartbeater) Lost() <-chan struct{} { return h.lost }

// Err says why the session was lost: the server's status error, so that
// status.Code(h.Err()) is FAILED_PRECONDITION, NOT_FOUND, UNAUTHENTICATED,
// PERMISSION_DENIED or INVALID_ARGUMENT. It is nil while the session is alive
// and after a plain Stop.
func (h *Heartbeater) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// LastAck returns the lease expiry and the leader from the latest
// acknowledgement; zero and nil before the first.
func (h *Heartbeater) LastAck() (leaseExpiresAt time.Time, leader *coordinatorv1.LeaderInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leaseExpiresAt, h.leader
}

// Stop ends the stream cleanly (the server sees the client finish, not a
// cancellation) and returns once the heartbeater's goroutines have ended. It
// does not deregister the session. Calling it more than once is harmless.
func (h *Heartbeater) Stop() {
	h.stopOnce.Do(func() { close(h.stop) })
	t := time.NewTimer(heartbeatCloseWait + time.Second)
	defer t.Stop()
	select {
	case <-h.done:
	case <-t.C:
		// A send stuck on a server that stopped reading: cut the stream.
		h.cancel()
		<-h.done
	}
	h.cancel()
}

var errHeartbeatPanicked = errors.New("heartbeat stream panicked")

func (h *Heartbeater) run(ctx context.Context) {
	defer close(h.done)
	bo := backoff{min: min(max(h.interval/50, 5*time.Millisecond), 100*time.Millisecond)}
	bo.max = max(h.interval/2, bo.min)
	for {
		// A panic (in the status callback, say) is logged and the stream
		// reopened: the metrics service beats from inside `gaia up`.
		var acked bool
		var err error
		if background.Safely(h.logger, "heartbeat", background.Options{}, func() { acked, err = h.runStream(ctx) }) {
			err = errHeartbeatPanicked
		}
		if errors.Is(err, errHeartbeatStopped) || ctx.Err() != nil {
			return
		}
		if h.client.closed() {
			h.logger.Warn("heartbeat stopped: client closed")
			return
		}
		if sessionGone(err) {
			h.mu.Lock()
			h.err = err
			h.mu.Unlock()
			close(h.lost)
			h.logger.Warn("session lost, heartbeat stopped", zap.Error(err))
			return
		}
		if acked {
			bo.reset()
		}
		delay := bo.next()
		h.logger.Info("heartbeat stream interrupted, reconnecting", zap.Duration("delay", delay), zap.Error(err))
		if !sleep(ctx, delay, h.stop) {
			return
		}
	}
}

// sessionGone tells the server's final word on a session from a transient
// failure. INVALID_ARGUMENT is final too: a malformed id or token would be
// refused by every node forever.
func sessionGone(err error) bool {
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.NotFound, codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument:
		return true
	}
	return false
}

// runStream opens one stream and beats on it until it breaks, Stop is called
// or ctx ends. It reports whether any beat was acknowledged, and returns only
// after its reader goroutine has ended.
func (h *Heartbeater) runStream(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := h.client.sessions.Heartbeat(ctx)
	if err != nil {
		return false, err
	}
	var acked atomic.Bool
	var answered atomic.Int64
	acks := make(chan struct{}, 1) // an ack arrived
	recvDone := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			acked.Store(true)
			h.recordAck(resp)
			answered.Add(1)
			select {
			case acks <- struct{}{}:
			default:
			}
		}
	}()

	beat := time.NewTimer(0) // at once after (re)connecting
	defer beat.Stop()
	// The oldest unanswered beat's deadline (nil channel: none unanswered).
	var sent int64
	var unanswered <-chan time.Time
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	defer ackTimer.Stop()
	for {
		select {
		case err := <-recvDone:
			return acked.Load(), err
		case <-acks:
			if answered.Load() >= sent {
				ackTimer.Stop()
				unanswered = nil
			} else {
				ackTimer.Reset(h.ackTimeout())
			}
		case <-unanswered:
			// A frozen or cut-off node keeps the connection up and says
			// nothing: give up on it and reconnect, on whichever node answers.
			cancel()
			<-recvDone
			return acked.Load(), status.Errorf(codes.Unavailable, "no acknowledgement within %s", h.ackTimeout())
		case <-beat.C:
			if err := stream.Send(h.nextBeat()); err != nil {
				if err == io.EOF {
					// The stream is over; its status comes from the reader.
					return acked.Load(), <-recvDone
				}
				cancel()
				<-recvDone
				return acked.Load(), err
			}
			if sent++; unanswered == nil {
				ackTimer.Reset(h.ackTimeout())
				unanswered = ackTimer.C
			}
			beat.Reset(h.beatInterval())
		case <-h.stop:
			_ = stream.CloseSend()
			wait := time.NewTimer(heartbeatCloseWait)
			select {
			case <-recvDone:
			case <-wait.C:
				cancel()
				<-recvDone
			}
			wait.Stop()
			return acked.Load(), errHeartbeatStopped
		case <-ctx.Done():
			cancel()
			<-recvDone
			return acked.Load(), errHeartbeatStopped
		}
	}
}

func (h *Heartbeater) nextBeat() *coordinatorv1.HeartbeatRequest {
	tasks, activity := h.status()
	return &coordinatorv1.HeartbeatRequest{
		SessionId:        h.sessionID,
		SessionToken:     h.token,
		CurrentTaskCount: tasks,
		Activity:         truncateUTF8(activity, maxActivityBytes),
	}
}

// beatInterval is the caller's interval, or the server's when that is
// shorter: beats never come less often than either side wants.
func (h *Heartbeater) beatInterval() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.serverInterval > 0 && h.serverInterval < h.interval {
		return h.serverInterval
	}
	return h.interval
}

// ackTimeout is how long a beat may go unanswered before the stream is
// given up: one and a half beat intervals. A node keeps a beat for at most
// one interval (retrying it on a new leader meanwhile) before it ends the
// stream itself, so only a node that cannot answer at all (frozen, cut off,
// dead behind a connection not yet timed out) runs into this.
func (h *Heartbeater) ackTimeout() time.Duration {
	return h.beatInterval() * 3 / 2
}

func (h *Heartbeater) recordAck(resp *coordinatorv1.HeartbeatResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if resp.GetLeaseExpiresAt() != nil {
		h.leaseExpiresAt = resp.GetLeaseExpiresAt().AsTime()
	}
	if l := resp.GetLeader(); l != nil {
		if h.leader.GetNodeId() != l.GetNodeId() {
			h.logger.Info("heartbeat acknowledged by a new leader",
				zap.String("leader_id", l.GetNodeId()),
				zap.String("leader_grpc_address", l.GetGrpcAddress()))
		}
		h.leader = l
	}
	if d := resp.GetHeartbeatInterval(); d != nil && d.AsDuration() > 0 {
		h.serverInterval = d.AsDuration()
	}
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
