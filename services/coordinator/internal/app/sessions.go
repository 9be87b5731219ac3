package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/window"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// SessionView is a session with what the leader knows of its liveness.
type SessionView struct {
	state.Session
	LastHeartbeatAt time.Time
	LeaseExpiresAt  time.Time
	TaskCount       int32
	Activity        string
	Active          bool
	Healthy         bool
	Available       bool
}

// RegisterInput describes a session to register. The port has validated it.
type RegisterInput struct {
	Name               string
	Tier               state.Tier
	Provider           state.Provider
	MaxConcurrentTasks int
	TimeWindows        []state.TimeWindow
	Labels             map[string]string
	JoinSecret         string
}

// Registration is a new session and its one-time token.
type Registration struct {
	Session           SessionView
	Token             string
	HeartbeatInterval time.Duration
	LeaseTimeout      time.Duration
}

// ErrBadJoinSecret answers a registration without the cluster's join secret.
var ErrBadJoinSecret = domainerr.New(domainerr.Unauthenticated, "join secret does not match the cluster's (CLUSTER_JOIN_SECRET)")

// RegisterSession commits a new session and starts its lease.
func (c *Coordinator) RegisterSession(ctx context.Context, in RegisterInput) (Registration, error) {
	if c.cfg.JoinSecret != "" && !secretsEqual(in.JoinSecret, c.cfg.JoinSecret) {
		return Registration{}, ErrBadJoinSecret
	}
	if _, taken := c.store.SessionByName(in.Name); taken {
		return Registration{}, state.ErrNameTaken
	}
	if err := c.checkRegistration(in.Labels); err != nil {
		return Registration{}, err
	}
	token, err := randomToken()
	if err != nil {
		return Registration{}, err
	}
	id := uuid.NewString()
	now := c.now()
	res, err := c.apply(ctx, fsm.CmdRegisterSession, fsm.RegisterSession{At: now, Session: state.Session{
		ID:                 id,
		Name:               in.Name,
		Tier:               in.Tier,
		Provider:           in.Provider,
		MaxConcurrentTasks: in.MaxConcurrentTasks,
		TimeWindows:        in.TimeWindows,
		Labels:             in.Labels,
		TokenHash:          hashToken(token),
	}})
	if err != nil {
		return Registration{}, err
	}
	r := res.(fsm.RegisterResult)
	if r.Err != nil {
		return Registration{}, r.Err
	}
	c.leases.Arm(r.Session.ID, now)
	return Registration{
		Session:           c.view(r.Session, now),
		Token:             token,
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		LeaseTimeout:      c.cfg.LeaseTimeout,
	}, nil
}

// HeartbeatInput is one beat.
type HeartbeatInput struct {
	SessionID string
	Token     string
	TaskCount int32
	Activity  string
}

// HeartbeatAck answers one beat.
type HeartbeatAck struct {
	LeaseExpiresAt    time.Time
	Status            state.Status
	HeartbeatInterval time.Duration
	LeaderID          string
	LeaderAddress     string
}

// Heartbeat renews a session's lease in the leader's memory. It commits
// nothing itself; a registered session's first beat, or a suspect session's
// beat, proposes the transition to active without waiting for it.
func (c *Coordinator) Heartbeat(ctx context.Context, in HeartbeatInput) (HeartbeatAck, error) {
	s, err := c.authenticate(in.SessionID, in.Token)
	if err != nil {
		return HeartbeatAck{}, err
	}
	if err := state.LiveErr(&s); err != nil {
		return HeartbeatAck{}, err
	}
	// An ack promises the session its lease until lease_expires_at, so only
	// a leader a quorum vouches for after the beat arrived may give it: a
	// leader frozen past an election (a GC pause, a stopped VM) would
	// otherwise ack, on waking, a session the new leader has already failed.
	now := c.now()
	if err := c.confirmBeat(ctx); err != nil {
		return HeartbeatAck{}, err
	}
	// The session as it is now that leadership is confirmed (this leader may
	// have judged it while the round ran). Its token was checked above and a
	// session's token never changes, so it is not hashed again.
	var ok bool
	if s, ok = c.store.Session(in.SessionID); !ok {
		return HeartbeatAck{}, state.ErrSessionNotFound
	}
	if err := state.LiveErr(&s); err != nil {
		return HeartbeatAck{}, err
	}
	exp := c.leases.Beat(s.ID, now, in.TaskCount, in.Activity)
	status := s.Status
	if status == state.StatusRegistered || status == state.StatusSuspect {
		c.proposeTransition(s.ID, state.StatusActive, now)
		status = state.StatusActive
	}
	return HeartbeatAck{
		LeaseExpiresAt:    exp,
		Status:            status,
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		LeaderID:          c.cfg.NodeID,
		LeaderAddress:     c.cfg.GRPCAddress,
	}, nil
}

// BeatTimeouts bound how long a node may hold a heartbeat: attempt is the
// wait for one answer (the leader's, or a quorum's word for this node's
// leadership), budget the wait for the beat as a whole, across a leader
// change. Both stay well under the lease, and budget under the client's ack
// timeout (one and a half intervals), so that a beat stuck on a frozen or
// partitioned leader is retried on the new one, or the client told to
// reconnect, long before the session could be judged.
func (c *Coordinator) BeatTimeouts() (attempt, budget time.Duration) {
	return min(c.cfg.HeartbeatInterval/2, c.cfg.LeaseTimeout/4), min(c.cfg.HeartbeatInterval, c.cfg.LeaseTimeout/2)
}

// proposeTransition commits a transition in the background, once at a time
// per session and target state.
func (c *Coordinator) proposeTransition(id string, to state.Status, lastBeat time.Time) {
	if prev, loaded := c.proposing.LoadOrStore(id, to); loaded && prev == to {
		return
	}
	go func() {
		// Deleted even after a panic, so that the next beat may propose again.
		defer c.proposing.Delete(id)
		background.Safely(c.log, "propose-transition", background.Options{}, func() {
			if c.testHookPropose != nil {
				c.testHookPropose(id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ApplyTimeout)
			defer cancel()
			if _, err := c.transition(ctx, id, to, lastBeat); err != nil {
				c.log.Debug("session transition not committed", zap.String("session_id", id), zap.String("to", string(to)), zap.Error(err))
			}
		})
	}()
}

func (c *Coordinator) transition(ctx context.Context, id string, to state.Status, lastBeat time.Time) (state.TransitionResult, error) {
	res, err := c.apply(ctx, fsm.CmdTransition, fsm.Transition{At: c.now(), Transition: state.Transition{SessionID: id, To: to, LastBeat: lastBeat}})
	if err != nil {
		return state.TransitionResult{}, err
	}
	r := res.(state.TransitionResult)
	if r.Err == nil && !to.Live() {
		c.leases.Forget(id)
	}
	return r, r.Err
}

// DeregisterSession ends a session on purpose and releases its locks.
func (c *Coordinator) DeregisterSession(ctx context.Context, sessionID, token string) (SessionView, []string, error) {
	s, err := c.authenticate(sessionID, token)
	if err != nil {
		return SessionView{}, nil, err
	}
	if err := state.LiveErr(&s); err != nil {
		return SessionView{}, nil, err
	}
	// The log holds the beat the session became active with; the leader's
	// lease holds its last one, which the final state must keep.
	var lastBeat time.Time
	if l, ok := c.leases.Get(sessionID); ok && l.Beaten {
		lastBeat = l.LastBeat
	}
	r, err := c.transition(ctx, sessionID, state.StatusDeregistered, lastBeat)
	if err != nil {
		return SessionView{}, nil, err
	}
	return c.view(r.Session, c.now()), r.ReleasedLocks, nil
}

// GetSession returns one session by id, or the live session of a name.
func (c *Coordinator) GetSession(ctx context.Context, id, name string) (SessionView, error) {
	if err := c.verifyLeader(ctx); err != nil {
		return SessionView{}, err
	}
	var s state.Session
	var ok bool
	if id != "" {
		s, ok = c.store.Session(id)
	} else {
		s, ok = c.store.SessionByName(name)
	}
	if !ok {
		return SessionView{}, state.ErrSessionNotFound
	}
	return c.view(s, c.now()), nil
}

// VerifySession checks a session's token and returns the session with the
// leader's view of its liveness. The session may be in any state.
func (c *Coordinator) VerifySession(ctx context.Context, id, token string) (SessionView, error) {
	if err := c.verifyLeader(ctx); err != nil {
		return SessionView{}, err
	}
	s, err := c.authenticate(id, token)
	if err != nil {
		return SessionView{}, err
	}
	return c.view(s, c.now()), nil
}

// SessionFilter selects sessions for ListSessions.
type SessionFilter struct {
	Statuses      []state.Status
	Tiers         []state.Tier
	Providers     []state.Provider
	AvailableOnly bool
	Labels        map[string]string
	// After is the paging cursor: the name and id of the last session of the
	// previous page.
	AfterName, AfterID string
	Limit              int
}

// ListSessions lists sessions ordered by name then id; more reports whether
// another page follows.
func (c *Coordinator) ListSessions(ctx context.Context, f SessionFilter) (out []SessionView, more bool, err error) {
	if err := c.verifyLeader(ctx); err != nil {
		return nil, false, err
	}
	now := c.now()
	all := c.store.Sessions()
	start := sort.Search(len(all), func(i int) bool {
		if all[i].Name != f.AfterName {
			return all[i].Name > f.AfterName
		}
		return all[i].ID > f.AfterID
	})
	for _, s := range all[start:] {
		if !f.matches(s) {
			continue
		}
		v := c.view(s, now)
		if f.AvailableOnly && !v.Available {
			continue
		}
		if len(out) == f.Limit {
			return out, true, nil
		}
		out = append(out, v)
	}
	return out, false, nil
}

func (f SessionFilter) matches(s state.Session) bool {
	if len(f.Statuses) == 0 {
		if s.Status == state.StatusDeregistered {
			return false
		}
	} else if !contains(f.Statuses, s.Status) {
		return false
	}
	if len(f.Tiers) > 0 && !contains(f.Tiers, s.Tier) {
		return false
	}
	if len(f.Providers) > 0 && !contains(f.Providers, s.Provider) {
		return false
	}
	for k, v := range f.Labels {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// view joins a committed session with the leader's lease. Whether the
// session is active is the lease's answer (liveness.Lease.Live), the same one
// the sweeper judges by, so that the two cannot disagree: right after a
// failover the new leader has re-armed every lease with the failover grace
// but has seen no beat yet, and the session must read as active until the
// sweeper would call it suspect. A session that never beat (registered, no
// heartbeat yet) is not active.
func (c *Coordinator) view(s state.Session, now time.Time) SessionView {
	v := SessionView{Session: s, LastHeartbeatAt: s.LastHeartbeatAt}
	l, leased := c.leases.Get(s.ID)
	leased = leased && s.Status.Live()
	if leased {
		if l.Beaten {
			v.LastHeartbeatAt = l.LastBeat
		}
		v.LeaseExpiresAt = l.ExpiresAt
		v.TaskCount = l.TaskCount
		v.Activity = l.Activity
	}
	v.Active = leased && !v.LastHeartbeatAt.IsZero() && l.Live(now)
	v.Healthy = s.Status.Live() && s.ConsecutiveFailures == 0
	v.Available = v.Active && v.Healthy && window.InAny(s.TimeWindows, now) && int(v.TaskCount) < s.MaxConcurrentTasks
	return v
}

// judgeLeases judges leases, every sweep interval while this node leads: a
// session whose lease ran out becomes
// suspect; one still silent half a heartbeat interval later fails, so that a
// silent session fails within the lease timeout plus one heartbeat interval.
func (c *Coordinator) judgeLeases(_ context.Context, now time.Time) {
	failGrace := c.cfg.HeartbeatInterval / 2
	for id, lastBeat := range c.leases.Overdue(now, 0) {
		s, ok := c.store.Session(id)
		if !ok || !s.Status.Live() {
			c.leases.Forget(id)
			continue
		}
		l, _ := c.leases.Get(id)
		switch {
		case now.After(l.ExpiresAt.Add(failGrace)):
			c.proposeTransition(id, state.StatusFailed, lastBeat)
		case s.Status != state.StatusSuspect:
			c.proposeTransition(id, state.StatusSuspect, lastBeat)
		}
	}
}

// sweepInterval is how often leader loops look for expired leases and locks:
// often enough to judge within a small part of a heartbeat interval.
func sweepInterval(heartbeat time.Duration) time.Duration {
	return min(max(heartbeat/20, 5*time.Millisecond), 100*time.Millisecond)
}

// purgeSessions forgets failed and deregistered sessions after their
// retention.
func (c *Coordinator) purgeSessions(ctx context.Context, now time.Time) {
	if _, err := c.apply(ctx, fsm.CmdPurgeSessions, fsm.PurgeSessions{At: now, Before: now.Add(-c.cfg.SessionRetention)}); err != nil {
		c.log.Warn("session purge not committed", zap.Error(err))
	}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
