// Package liveness keeps the leader's in-memory lease of every live session.
// Heartbeats land here and never in the Raft log; only the transitions this
// package detects (a lease that ran out, a session gone quiet past its grace)
// are committed, by the caller. It owns no goroutines and reads no clock: the
// caller passes the time in.
package liveness

import (
	"sync"
	"time"
)

// Lease is what the leader knows of a session between committed transitions.
type Lease struct {
	LastBeat  time.Time
	ExpiresAt time.Time
	TaskCount int32
	Activity  string
	// Beaten is true once a heartbeat has been seen by this leader.
	Beaten bool
}

// Live reports whether the lease still runs at now. It is the coordinator's
// one definition of a live (active) session: the sweeper fails what is not
// live, and views report what is.
func (l Lease) Live(now time.Time) bool { return !now.After(l.ExpiresAt) }

const shards = 64

// Tracker holds leases, sharded to keep heartbeat contention low.
type Tracker struct {
	leaseTimeout time.Duration
	shards       [shards]shard
}

type shard struct {
	mu     sync.Mutex
	leases map[string]*Lease
}

// NewTracker returns a tracker giving each beat a lease of leaseTimeout
// (SESSION_LEASE_TIMEOUT; lease_ttl in the API).
func NewTracker(leaseTimeout time.Duration) *Tracker {
	t := &Tracker{leaseTimeout: leaseTimeout}
	for i := range t.shards {
		t.shards[i].leases = map[string]*Lease{}
	}
	return t
}

func (t *Tracker) shard(id string) *shard {
	// FNV-1a, inline to avoid an allocation per beat.
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return &t.shards[h%shards]
}

// lease returns id's lease, made empty if there is none. The caller holds
// s.mu.
func (s *shard) lease(id string) *Lease {
	l := s.leases[id]
	if l == nil {
		l = &Lease{}
		s.leases[id] = l
	}
	return l
}

// Beat records a heartbeat at now and returns the new lease expiry.
func (t *Tracker) Beat(id string, now time.Time, taskCount int32, activity string) time.Time {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lease(id)
	l.LastBeat = now
	l.ExpiresAt = now.Add(t.leaseTimeout)
	l.TaskCount = taskCount
	l.Activity = activity
	l.Beaten = true
	return l.ExpiresAt
}

// Arm starts a session's lease at from without a beat: at registration, and
// for every live session when this node becomes leader (from = now plus the
// failover grace), so that a leader change never fails a healthy session.
// A lease already running later than that is kept.
func (t *Tracker) Arm(id string, from time.Time) {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lease(id)
	if exp := from.Add(t.leaseTimeout); exp.After(l.ExpiresAt) {
		l.ExpiresAt = exp
		if l.LastBeat.IsZero() || l.LastBeat.Before(from) {
			l.LastBeat = from
		}
	}
}

// Get returns a session's lease.
func (t *Tracker) Get(id string) (Lease, bool) {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[id]; ok {
		return *l, true
	}
	return Lease{}, false
}

// Forget drops a session's lease.
func (t *Tracker) Forget(id string) {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.leases, id)
}

// Reset drops every lease (on losing leadership).
func (t *Tracker) Reset() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.leases = map[string]*Lease{}
		s.mu.Unlock()
	}
}

// Overdue lists the sessions whose lease ran out more than grace ago by now
// (grace 0: the lease ran out at all), with their last beat.
func (t *Tracker) Overdue(now time.Time, grace time.Duration) map[string]time.Time {
	out := map[string]time.Time{}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for id, l := range s.leases {
			if !l.Live(now.Add(-grace)) {
				out[id] = l.LastBeat
			}
		}
		s.mu.Unlock()
	}
	return out
}

// Len is the number of leases held.
func (t *Tracker) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.leases)
		s.mu.Unlock()
	}
	return n
}
