package app

import (
	"fmt"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Limits cap what one session, or the sessions of the join secret, may hold,
// so that one agent (or one leaked join secret) cannot exhaust the
// coordinator's memory. Zero values take the defaults.
type Limits struct {
	// MaxLocksPerSession (SESSION_MAX_LOCKS) caps the locks one session holds.
	MaxLocksPerSession int
	// MaxLabelBytes (SESSION_MAX_LABEL_BYTES) caps the bytes of a session's
	// labels, keys and values together.
	MaxLabelBytes int
	// MaxSessionsPerJoinSecret (CLUSTER_JOIN_SECRET_MAX_SESSIONS) caps the
	// live sessions registered with the join secret (the cluster has one).
	MaxSessionsPerJoinSecret int
}

// Default limits.
const (
	DefaultMaxLocksPerSession       = 1000
	DefaultMaxLabelBytes            = 4096
	DefaultMaxSessionsPerJoinSecret = 10000
)

func (l *Limits) defaults() {
	if l.MaxLocksPerSession <= 0 {
		l.MaxLocksPerSession = DefaultMaxLocksPerSession
	}
	if l.MaxLabelBytes <= 0 {
		l.MaxLabelBytes = DefaultMaxLabelBytes
	}
	if l.MaxSessionsPerJoinSecret <= 0 {
		l.MaxSessionsPerJoinSecret = DefaultMaxSessionsPerJoinSecret
	}
}

// checkRegistration refuses a session over the label or live-session caps.
// The live-session count is checked before the command is proposed, so
// registrations in flight together may pass it by their number: the cap
// bounds growth, it is not an exact quota.
func (c *Coordinator) checkRegistration(labels map[string]string) error {
	size := 0
	for k, v := range labels {
		size += len(k) + len(v)
	}
	if size > c.cfg.Limits.MaxLabelBytes {
		return domainerr.Invalid("labels", fmt.Sprintf("%d bytes of keys and values; at most %d (SESSION_MAX_LABEL_BYTES)", size, c.cfg.Limits.MaxLabelBytes))
	}
	if live, _ := c.store.Counts(); live >= c.cfg.Limits.MaxSessionsPerJoinSecret {
		return domainerr.New(domainerr.ResourceExhausted, fmt.Sprintf("%d live sessions, the most the join secret admits (CLUSTER_JOIN_SECRET_MAX_SESSIONS)", live))
	}
	return nil
}

// checkLockCap refuses a new lock to a session that holds the most it may.
// Acquiring a lock the session holds already is a renewal and always passes.
func (c *Coordinator) checkLockCap(sessionID, key string) error {
	if l, held := c.store.Lock(key); held && l.OwnerID == sessionID {
		return nil
	}
	if n := c.store.LockCount(sessionID); n >= c.cfg.Limits.MaxLocksPerSession {
		return domainerr.New(domainerr.ResourceExhausted, fmt.Sprintf("the session holds %d locks, the most it may (SESSION_MAX_LOCKS); release one first", n))
	}
	return nil
}
