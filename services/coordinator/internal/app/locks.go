package app

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// LockView is a held lock with the number of sessions waiting for it.
type LockView struct {
	state.Lock
	Waiters int
}

// ErrLockWaitTimedOut answers an acquire that waited its whole wait_timeout.
var ErrLockWaitTimedOut = domainerr.New(domainerr.DeadlineExceeded, "lock still held when wait_timeout ran out")

// ErrLockQueued answers an acquire without wait while others queue for the lock.
var ErrLockQueued = domainerr.New(domainerr.Aborted, "lock is free but other sessions are waiting for it first")

// LockRef names a lock and the session acting on it: the key, the session
// and its token, and for renew and release the fencing token of the grant.
type LockRef struct {
	Key       string
	SessionID string
	Token     string
	Fencing   uint64
}

// AcquireLock grants key to a session, waiting up to wait (first come, first
// served among waiters) while another session holds it.
func (c *Coordinator) AcquireLock(ctx context.Context, ref LockRef, ttl, wait time.Duration) (LockView, error) {
	key, sessionID := ref.Key, ref.SessionID
	if _, err := c.authenticate(sessionID, ref.Token); err != nil {
		return LockView{}, err
	}
	if err := c.checkLockCap(sessionID, key); err != nil {
		return LockView{}, err
	}
	try := func() (state.Lock, error) {
		res, err := c.apply(ctx, fsm.CmdAcquireLock, fsm.AcquireLock{At: c.now(), Key: key, SessionID: sessionID, TTL: ttl})
		if err != nil {
			return state.Lock{}, err
		}
		r := res.(fsm.LockResult)
		return r.Lock, r.Err
	}
	// Nobody queued, or the caller holds it already: try at once. The holder
	// never queues behind others for its own lock (a retried acquire whose
	// first answer was lost must get its grant back, not wait for itself).
	if l, held := c.store.Lock(key); (held && l.OwnerID == sessionID) || !c.waiters.queued(key) {
		l, err := try()
		if !errors.Is(err, state.ErrLockHeld) {
			return c.lockView(l), err
		}
		if wait <= 0 {
			return LockView{}, err
		}
	} else if wait <= 0 {
		return LockView{}, ErrLockQueued
	}

	w := c.waiters.enqueue(key)
	defer c.waiters.leave(key, w)
	// The lock may have been freed between the failed try and joining the
	// queue: a head that finds it free goes at once.
	if c.waiters.isHead(key, w) {
		if _, held := c.store.Lock(key); !held {
			w.wake()
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-w.ready:
		case <-w.abandoned:
			return LockView{}, c.notLeader()
		case <-timer.C:
			return LockView{}, ErrLockWaitTimedOut
		case <-ctx.Done():
			return LockView{}, ctx.Err()
		}
		l, err := try()
		if errors.Is(err, state.ErrLockHeld) {
			continue // someone renewed or re-took it; keep our place
		}
		return c.lockView(l), err
	}
}

// RenewLock extends a held lock; zero ttl keeps its TTL.
func (c *Coordinator) RenewLock(ctx context.Context, ref LockRef, ttl time.Duration) (LockView, error) {
	if _, err := c.authenticate(ref.SessionID, ref.Token); err != nil {
		return LockView{}, err
	}
	res, err := c.apply(ctx, fsm.CmdRenewLock, fsm.RenewLock{At: c.now(), Key: ref.Key, SessionID: ref.SessionID, Fencing: ref.Fencing, TTL: ttl})
	if err != nil {
		return LockView{}, err
	}
	r := res.(fsm.LockResult)
	return c.lockView(r.Lock), r.Err
}

// ReleaseLock frees a held lock and returns the session it went to next, if
// a waiter took it at once.
func (c *Coordinator) ReleaseLock(ctx context.Context, ref LockRef) error {
	if _, err := c.authenticate(ref.SessionID, ref.Token); err != nil {
		return err
	}
	res, err := c.apply(ctx, fsm.CmdReleaseLock, fsm.ReleaseLock{At: c.now(), Key: ref.Key, SessionID: ref.SessionID, Fencing: ref.Fencing})
	if err != nil {
		return err
	}
	return res.(fsm.ReleaseResult).Err
}

// GetLock returns the holder of a lock.
func (c *Coordinator) GetLock(ctx context.Context, key string) (LockView, error) {
	if err := c.verifyLeader(ctx); err != nil {
		return LockView{}, err
	}
	l, ok := c.store.Lock(key)
	if !ok {
		return LockView{}, state.ErrLockNotFound
	}
	return c.lockView(l), nil
}

// LockFilter selects locks for ListLocks.
type LockFilter struct {
	Prefix   string
	OwnerID  string
	AfterKey string
	Limit    int
}

// ListLocks lists held locks by key; more reports whether another page follows.
func (c *Coordinator) ListLocks(ctx context.Context, f LockFilter) (out []LockView, more bool, err error) {
	if err := c.verifyLeader(ctx); err != nil {
		return nil, false, err
	}
	all := c.store.Locks(f.Prefix)
	start := sort.Search(len(all), func(i int) bool { return all[i].Key > f.AfterKey })
	for _, l := range all[start:] {
		if f.OwnerID != "" && l.OwnerID != f.OwnerID {
			continue
		}
		if len(out) == f.Limit {
			return out, true, nil
		}
		out = append(out, c.lockView(l))
	}
	return out, false, nil
}

func (c *Coordinator) lockView(l state.Lock) LockView {
	if l.Key == "" {
		return LockView{}
	}
	return LockView{Lock: l, Waiters: c.waiters.count(l.Key)}
}

// expireLocks commits the expiry of locks whose TTL ran out; the leader runs
// it every sweep interval. Its cost grows with the locks that are due, not
// with the locks held (see dueLocks).
func (c *Coordinator) expireLocks(ctx context.Context, now time.Time) {
	c.mu.Lock()
	since := c.leaderSince
	c.mu.Unlock()
	due := dueLocks(c.store, now, since)
	if len(due) == 0 {
		return
	}
	res, err := c.apply(ctx, fsm.CmdExpireLocks, fsm.ExpireLocks{At: now, Locks: due})
	if err != nil {
		c.log.Warn("lock expiry not committed", zap.Error(err))
		return
	}
	if freed := res.(fsm.ExpireResult).Freed; len(freed) > 0 {
		c.log.Info("locks expired", zap.Int("count", len(freed)), zap.Strings("keys", freed[:min(len(freed), maxLoggedKeys)]))
	}
}

// maxLoggedKeys bounds the keys one log line names.
const maxLoggedKeys = 100

// dueLocks lists the locks to expire at now on a leader that took over at
// since. A lock is never taken early: after a leader change, a lock lives at
// least a full TTL from the moment this node took over, whatever the old
// leader's clock said, so only a lock whose ExpiresAt has passed can be due,
// and the store finds those without looking at the others.
func dueLocks(store *state.Store, now, since time.Time) []fsm.LockGrant {
	var due []fsm.LockGrant
	for _, l := range store.LocksExpiringBy(now) {
		if floor := since.Add(l.TTL); now.Before(floor) {
			continue
		}
		due = append(due, fsm.LockGrant{Key: l.Key, Fencing: l.FencingToken})
	}
	return due
}

// ValidLockKey reports what is wrong with a lock key, or "".
func ValidLockKey(key string) string {
	switch {
	case key == "":
		return "must not be empty"
	case len(key) > 512:
		return "must be at most 512 bytes"
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return "must be printable ASCII without spaces"
		}
	}
	if strings.Contains(key, "//") {
		return "must not contain empty path segments (//)"
	}
	return ""
}
