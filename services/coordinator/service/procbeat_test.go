package service_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/proctest"
)

// procBeater beats for one session on raw Heartbeat streams to coordinator
// processes and records every acknowledgement with the time it arrived, which
// the Go client's Heartbeater does not expose. It never stops beating until
// stopped or told the session is gone: a FAILED status for its session is a
// session failed while its client was beating.
type procBeater struct {
	c         *proctest.Cluster
	sessionID string
	token     string
	nodes     []*proctest.Node // tried in turn after a stream ends
	interval  time.Duration
	// ackTimeout cuts a stream whose oldest beat has gone unanswered this
	// long, and moves to the next node (the client contract); 0 keeps the
	// stream whatever happens, so that beats queue on a frozen node.
	ackTimeout time.Duration

	mu      sync.Mutex
	acks    []beatAck
	sent    int
	lastErr error
	lost    error // the server's final word on the session

	cancel context.CancelFunc
	done   chan struct{}
}

type beatAck struct {
	at     time.Time
	via    string // the node the stream was open to
	leader string
	status coordinatorv1.SessionStatus
	lease  time.Time
}

func startProcBeater(c *proctest.Cluster, sessionID, token string, interval, ackTimeout time.Duration, nodes ...*proctest.Node) *procBeater {
	ctx, cancel := context.WithCancel(context.Background())
	b := &procBeater{c: c, sessionID: sessionID, token: token, nodes: nodes, interval: interval, ackTimeout: ackTimeout, cancel: cancel, done: make(chan struct{})}
	go b.run(ctx)
	return b
}

func (b *procBeater) stop() { b.cancel(); <-b.done }

func (b *procBeater) run(ctx context.Context) {
	defer close(b.done)
	for i := 0; ctx.Err() == nil; i++ {
		err := b.stream(ctx, b.nodes[i%len(b.nodes)])
		b.mu.Lock()
		b.lastErr = err
		switch status.Code(err) {
		case codes.FailedPrecondition, codes.NotFound, codes.PermissionDenied, codes.Unauthenticated:
			b.lost = err
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		// Reconnect at once; the pause only keeps a node that refuses
		// streams from being hammered.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *procBeater) stream(ctx context.Context, n *proctest.Node) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := coordinatorv1.NewSessionServiceClient(b.c.Conn(n)).Heartbeat(ctx)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var unanswered []time.Time // send times of beats not yet acknowledged
	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			a := beatAck{at: time.Now(), via: n.ID, leader: resp.GetLeader().GetNodeId(), status: resp.GetStatus(), lease: resp.GetLeaseExpiresAt().AsTime()}
			b.mu.Lock()
			b.acks = append(b.acks, a)
			b.mu.Unlock()
			mu.Lock()
			if len(unanswered) > 0 {
				unanswered = unanswered[1:]
			}
			mu.Unlock()
		}
	}()
	beat := time.NewTimer(0)
	defer beat.Stop()
	check := time.NewTicker(max(b.interval/20, 10*time.Millisecond))
	defer check.Stop()
	for {
		select {
		case err := <-recvErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-check.C:
			mu.Lock()
			overdue := b.ackTimeout > 0 && len(unanswered) > 0 && time.Since(unanswered[0]) > b.ackTimeout
			mu.Unlock()
			if overdue {
				cancel()
				<-recvErr
				return status.Errorf(codes.Unavailable, "no acknowledgement from %s within %v", n.ID, b.ackTimeout)
			}
		case <-beat.C:
			mu.Lock()
			unanswered = append(unanswered, time.Now())
			mu.Unlock()
			if err := st.Send(&coordinatorv1.HeartbeatRequest{SessionId: b.sessionID, SessionToken: b.token}); err != nil {
				cancel()
				return <-recvErr
			}
			b.mu.Lock()
			b.sent++
			b.mu.Unlock()
			beat.Reset(b.interval)
		}
	}
}

// progress is how many beats were sent, and how the last stream ended.
func (b *procBeater) progress() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent, b.lastErr
}

// ackCount counts the acknowledgements received so far.
func (b *procBeater) ackCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.acks)
}

// activeAcksAfter are the acknowledgements saying ACTIVE that arrived after t.
func (b *procBeater) activeAcksAfter(t time.Time) []beatAck {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []beatAck
	for _, a := range b.acks {
		if a.at.After(t) && a.status == coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE {
			out = append(out, a)
		}
	}
	return out
}

func (a beatAck) String() string {
	return fmt.Sprintf("ACTIVE ack at %s via %s from leader %s, lease until %s",
		a.at.Format("15:04:05.000"), a.via, a.leader, a.lease.Format("15:04:05.000"))
}

// procSession is a session's state as the cluster's leader answers it
// (through any node: a follower forwards the read).
func procSession(c *proctest.Cluster, n *proctest.Node, id string) (*coordinatorv1.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := coordinatorv1.NewSessionServiceClient(c.Conn(n)).GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: id})
	return resp.GetSession(), err
}

// pollUntil polls ok every 20 ms until it holds (true) or the deadline
// passes (false).
func pollUntil(deadline time.Time, ok func() bool) bool {
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// procRegister registers a session through the cluster.
func procRegister(t testing.TB, c *proctest.Cluster, name string) (string, string) {
	t.Helper()
	s, tok := register(t, c.Client(), name)
	return s.GetSessionId(), tok
}
