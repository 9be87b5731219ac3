package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/liveness"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// Config tunes the coordinator's use cases.
type Config struct {
	NodeID string
	// GRPCAddress is the address other nodes and clients reach this node's
	// gRPC server at; the leader records it so that followers can forward.
	GRPCAddress       string
	LeaseTimeout      time.Duration
	HeartbeatInterval time.Duration
	// FailoverGrace is added to every lease when this node becomes leader, so
	// that sessions have time to find the new leader before they are judged.
	FailoverGrace time.Duration
	// JoinSecret, when set, must accompany every registration.
	JoinSecret string
	// Limits cap locks and labels per session and live sessions per join
	// secret.
	Limits Limits
	// Signer issues credentials (AuthService); nil on a node without
	// AUTH_SIGNING_KEY_FILE, which then cannot issue.
	Signer *auth.Signer
	// ApplyTimeout bounds how long a command may wait to be committed.
	ApplyTimeout time.Duration
	// SessionRetention is how long failed and deregistered sessions stay
	// visible before they are purged.
	SessionRetention time.Duration
	// CheckStorage, when set, probes this node's Raft storage and returns
	// why it cannot be written. A node that has just been elected calls it
	// before it serves, and serves only if it returns nil: one that cannot
	// write its log would fail every write it takes. The Raft node's
	// storage guard hands leadership over in that case.
	CheckStorage func() error
	// StorageError, when set, is why this node cannot write its Raft
	// storage now, nil while it can (cluster status).
	StorageError func() error
	// LogEncoding is how commands are written to the log (the state machine
	// reads every encoding).
	LogEncoding fsm.Encoding
	// ConfirmLeadership asks the voters, with requests sent after the call,
	// whether this node still leads, and returns nil once a quorum says so
	// (raftnode.Node.ConfirmLeadership). It backs linearizable reads and
	// heartbeat acks. Nil falls back to a Raft barrier, which proves the same
	// with a log entry.
	ConfirmLeadership func(timeout time.Duration) error
}

// Coordinator runs the coordinator's use cases on one node. Writes go
// through Raft; leader-only work (leases, lock expiry, lock waiters) runs
// while this node leads.
type Coordinator struct {
	cfg       Config
	raft      *raft.Raft
	snapshots raft.SnapshotStore
	fsm       *fsm.FSM
	store     *state.Store
	log       *zap.Logger
	now       func() time.Time

	leases  *liveness.Tracker
	waiters *lockWaiters
	// A quorum's word, given after the call, that this node leads
	// (Config.ConfirmLeadership): one confirmer for reads, one for beats.
	confirmer     *leaderConfirmer
	beatConfirmer *leaderConfirmer

	mu          sync.Mutex
	leading     bool
	leaderSince time.Time
	stopLeading context.CancelFunc
	leaderLoops sync.WaitGroup

	// pending transitions already proposed, so that a beat storm does not
	// propose the same change many times.
	proposing sync.Map // session id → state.Status

	// testHookPropose, set only by this package's tests, runs at the start
	// of a background transition proposal (to make one panic).
	testHookPropose func(sessionID string)
}

// New builds the use cases over a Raft node and its state machine.
func New(cfg Config, r *raft.Raft, snapshots raft.SnapshotStore, f *fsm.FSM, log *zap.Logger) *Coordinator {
	cfg.Limits.defaults()
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 5 * time.Second
	}
	if cfg.SessionRetention <= 0 {
		cfg.SessionRetention = time.Hour
	}
	c := &Coordinator{
		cfg:       cfg,
		raft:      r,
		snapshots: snapshots,
		fsm:       f,
		store:     f.Store(),
		log:       log,
		now:       time.Now,
		leases:    liveness.NewTracker(cfg.LeaseTimeout),
		waiters:   newLockWaiters(),
	}
	// The confirmers' rounds run on goroutines of their own: a panic there
	// is logged and answered as a failed check, not the end of the process.
	safe := func(name string, check func() error) func() error {
		return func() (err error) {
			if background.Safely(log, name, background.Options{}, func() { err = check() }) {
				err = errLeaderCheckPanicked
			}
			return err
		}
	}
	confirm := cfg.ConfirmLeadership
	if confirm == nil {
		confirm = func(timeout time.Duration) error { return r.Barrier(timeout).Error() }
	}
	// Reads and beats have confirmers of their own, so that a storm of one
	// does not hold up the other's rounds.
	c.confirmer = newLeaderConfirmer(safe("confirm-leader-read", func() error { return confirm(c.cfg.ApplyTimeout) }))
	c.beatConfirmer = newLeaderConfirmer(safe("confirm-leader-beat", func() error { return confirm(c.cfg.ApplyTimeout) }))
	f.OnLockFreed(c.waiters.freed)
	return c
}

var errLeaderCheckPanicked = errors.New("leadership check failed")

// Run follows this node's leadership until ctx ends: on gaining it, it
// records the node's address, re-arms every lease with the failover grace and
// starts the leader's loops; on losing it, it stops them.
func (c *Coordinator) Run(ctx context.Context) {
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	c.raft.RegisterObserver(observer)
	defer c.raft.DeregisterObserver(observer)

	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	for {
		c.syncLeadership(ctx)
		select {
		case <-ctx.Done():
			c.loseLeadership()
			return
		case <-obs:
		case <-check.C:
		}
	}
}

func (c *Coordinator) syncLeadership(ctx context.Context) {
	isLeader := c.raft.State() == raft.Leader
	c.mu.Lock()
	leading := c.leading
	c.mu.Unlock()
	switch {
	case isLeader && !leading:
		c.gainLeadership(ctx)
	case !isLeader && leading:
		c.loseLeadership()
	}
}

func (c *Coordinator) gainLeadership(ctx context.Context) {
	if c.cfg.CheckStorage != nil {
		if err := c.cfg.CheckStorage(); err != nil {
			// Logged, once, by the storage guard, which hands leadership
			// over; until it has, this is asked again every check.
			c.log.Debug("not serving as leader: the raft storage cannot be written", zap.Error(err))
			return
		}
	}
	// Apply everything committed by earlier leaders before judging anyone.
	if err := c.raft.Barrier(c.cfg.ApplyTimeout).Error(); err != nil {
		c.log.Warn("leadership barrier failed", zap.Error(err))
		return
	}
	now := c.now()
	lctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.leading = true
	c.leaderSince = now
	c.stopLeading = cancel
	c.mu.Unlock()

	armed := 0
	for _, s := range c.store.Sessions() {
		if s.Status.Live() {
			c.leases.Arm(s.ID, now.Add(c.cfg.FailoverGrace))
			armed++
		}
	}
	c.log.Info("leadership gained", zap.String("node_id", c.cfg.NodeID), zap.Int("leases_armed", armed), zap.Duration("failover_grace", c.cfg.FailoverGrace))

	if addr, ok := c.store.NodeAddress(c.cfg.NodeID); !ok || addr != c.cfg.GRPCAddress {
		if _, err := c.apply(lctx, fsm.CmdSetNode, fsm.SetNode{Node: state.Node{ID: c.cfg.NodeID, GRPCAddress: c.cfg.GRPCAddress}}); err != nil {
			c.log.Warn("recording leader address failed", zap.Error(err))
		}
	}
	c.leaderLoops.Add(3)
	go c.leaderLoop(lctx, "judge-leases", sweepInterval(c.cfg.HeartbeatInterval), c.judgeLeases)
	go c.leaderLoop(lctx, "expire-locks", sweepInterval(c.cfg.HeartbeatInterval), c.expireLocks)
	go c.leaderLoop(lctx, "purge-sessions", min(c.cfg.SessionRetention/4, 10*time.Minute), c.purgeSessions)
}

// leaderLoop runs step every interval, with the leader's time, until ctx
// ends with this node's leadership. A step that panics is logged with its
// stack and the loop goes on at the next tick: under `gaia up` every
// service shares the process, which a panic here would end.
func (c *Coordinator) leaderLoop(ctx context.Context, job string, interval time.Duration, step func(ctx context.Context, now time.Time)) {
	defer c.leaderLoops.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		background.Safely(c.log, job, background.Options{}, func() { step(ctx, c.now()) })
	}
}

func (c *Coordinator) loseLeadership() {
	c.mu.Lock()
	if !c.leading {
		c.mu.Unlock()
		return
	}
	c.leading = false
	cancel := c.stopLeading
	c.mu.Unlock()
	cancel()
	c.leaderLoops.Wait()
	c.leases.Reset()
	c.waiters.failAll()
	c.log.Info("leadership lost", zap.String("node_id", c.cfg.NodeID))
}

// Leading reports whether this node runs the leader's work now. It is the
// one leadership check of a request: ports serve a request here only while it
// is true and forward it otherwise, and the use cases do not ask again. A node
// that loses leadership in between still answers correctly: a write then
// fails in Raft's Apply and a read in VerifyLeader, both as NotLeader.
func (c *Coordinator) Leading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leading
}

// LeaderAddress is the gRPC address of the current leader, if known.
func (c *Coordinator) LeaderAddress() (id, grpcAddr string) {
	_, leaderID := c.raft.LeaderWithID()
	if leaderID == "" {
		return "", ""
	}
	addr, _ := c.store.NodeAddress(string(leaderID))
	return string(leaderID), addr
}

// notLeader is the error for a write or read this node cannot serve.
func (c *Coordinator) notLeader() error {
	_, addr := c.LeaderAddress()
	return domainerr.NotLeader(addr)
}

// apply commits a command and returns the state machine's result. A result
// that is an error is returned as the error.
func (c *Coordinator) apply(ctx context.Context, t fsm.CommandType, cmd any) (any, error) {
	data, err := c.cfg.LogEncoding.Encode(t, cmd)
	if err != nil {
		return nil, err
	}
	timeout := c.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	f := c.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
			return nil, c.notLeader()
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, domainerr.New(domainerr.Unavailable, "raft is too busy to take the command in time; retry")
		}
		// Anything else is this node failing to write its log (a full
		// disk, an I/O error): Raft steps the leader down on it, so the
		// client should retry, on another node if this one keeps failing.
		c.log.Error("command not committed: the log could not be written", zap.Stringer("command", t), zap.Error(err))
		_, addr := c.LeaderAddress()
		return nil, &domainerr.Error{Kind: domainerr.Unavailable, Leader: addr,
			Msg: fmt.Sprintf("this node could not write the command to its log (%v); retry, on another node if this one keeps failing", err)}
	}
	if e, ok := f.Response().(error); ok {
		return nil, e
	}
	return f.Response(), nil
}

// verifyLeader makes a read linearizable: a quorum confirms, in a round
// that began after the call, that this node still leads. Concurrent callers
// share a round (see leaderConfirmer). Whether the node leads at all was
// checked once, by the port that routed the request here (see Leading).
//
// Raft's own VerifyLeader is not used: it counts a follower's answer to an
// RPC sent before the call, so a leader frozen past an election (SIGSTOP, a
// long GC pause) could, on waking, read an answer that sat in its socket
// during the freeze and take it for a quorum's word. Config.ConfirmLeadership
// counts only answers to requests sent after the call.
func (c *Coordinator) verifyLeader(ctx context.Context) error {
	return c.confirmWith(ctx, c.confirmer)
}

// confirmBeat backs a heartbeat's ack with the same check as a read: the
// beat is acked only once a quorum has said, after it arrived, that this
// node still leads. Concurrent beats share one round, so a beat storm costs
// one heartbeat to each voter per round, not per beat.
func (c *Coordinator) confirmBeat(ctx context.Context) error {
	return c.confirmWith(ctx, c.beatConfirmer)
}

func (c *Coordinator) confirmWith(ctx context.Context, l *leaderConfirmer) error {
	if err := l.confirm(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return c.notLeader()
	}
	return nil
}

// hashToken is how tokens are kept: only their SHA-256 enters the log.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// tokenMatches hashes into an array on the stack: it runs on every beat.
func tokenMatches(s *state.Session, token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(s.TokenHash, h[:]) == 1
}

// authenticate finds a session and checks its token; the session may be in
// any state.
func (c *Coordinator) authenticate(sessionID, token string) (state.Session, error) {
	s, ok := c.store.Session(sessionID)
	if !ok {
		return state.Session{}, state.ErrSessionNotFound
	}
	if !tokenMatches(&s, token) {
		return state.Session{}, state.ErrWrongToken
	}
	return s, nil
}

func secretsEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
