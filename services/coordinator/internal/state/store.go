package state

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultEventRetention is how many session events the store keeps in memory
// for watchers that resume; one further back gets a snapshot instead.
const DefaultEventRetention = 100_000

// DefaultSnapshotEvents is how many of the newest retained events a Raft
// snapshot carries. A snapshot is the state (sessions, locks, nodes,
// credentials) plus this bounded tail of history: a node restored from it
// answers a watcher resuming within the tail and sends any older one a
// snapshot, as it does past the in-memory retention.
const DefaultSnapshotEvents = 10_000

// Store holds the replicated state. Its Apply* methods are for the FSM alone.
type Store struct {
	mu             sync.RWMutex
	sessions       map[string]*Session
	byName         map[string]string // live sessions only
	locks          map[string]*Lock
	locksBySession map[string]map[string]struct{}
	expiries       lockExpiries // the held locks by ExpiresAt
	nodes          map[string]Node
	credentials    map[string]*Credential
	events         []Event
	retention      int
	snapshotEvents int    // how many of the newest events Dump keeps
	droppedThrough uint64 // index of the newest event no longer retained
	index          uint64 // last applied log index
	changed        chan struct{}
}

// NewStore returns an empty store keeping up to retention events (at least 1)
// and snapshots that carry up to DefaultSnapshotEvents of them.
func NewStore(retention int) *Store {
	return NewStoreRetaining(retention, DefaultSnapshotEvents)
}

// NewStoreRetaining returns an empty store keeping up to retention events in
// memory (at least 1) and the newest snapshotEvents of them (at most
// retention, at least 0) in snapshots.
func NewStoreRetaining(retention, snapshotEvents int) *Store {
	retention = max(retention, 1)
	s := &Store{
		retention:      retention,
		snapshotEvents: min(max(snapshotEvents, 0), retention),
		changed:        make(chan struct{}),
	}
	s.reset()
	return s
}

func (s *Store) reset() {
	s.sessions = map[string]*Session{}
	s.byName = map[string]string{}
	s.locks = map[string]*Lock{}
	s.locksBySession = map[string]map[string]struct{}{}
	s.expiries = newLockExpiries()
	s.nodes = map[string]Node{}
	s.credentials = map[string]*Credential{}
	s.events = nil
	s.droppedThrough = 0
	s.index = 0
}

// Changed is closed the next time an event is recorded; take it again after.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Index is the last applied log index.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// SetIndex records that entries up to index have been applied. The FSM calls
// it for every entry, whatever the command did.
func (s *Store) SetIndex(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index > s.index {
		s.index = index
	}
}

// Session returns a copy of one session.
func (s *Store) Session(id string) (Session, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if x, ok := s.sessions[id]; ok {
		return *x, true
	}
	return Session{}, false
}

// SessionByName returns a copy of the live session with that name.
func (s *Store) SessionByName(name string) (Session, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id, ok := s.byName[name]; ok {
		return *s.sessions[id], true
	}
	return Session{}, false
}

// Sessions returns copies of every session, ordered by name then id.
func (s *Store) Sessions() []Session {
	s.mu.RLock()
	out := make([]Session, 0, len(s.sessions))
	for _, x := range s.sessions {
		out = append(out, *x)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Lock returns a copy of a held lock.
func (s *Store) Lock(key string) (Lock, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l, ok := s.locks[key]; ok {
		return *l, true
	}
	return Lock{}, false
}

// Locks returns copies of the held locks whose key starts with prefix, by key.
func (s *Store) Locks(prefix string) []Lock {
	s.mu.RLock()
	out := make([]Lock, 0)
	for k, l := range s.locks {
		if strings.HasPrefix(k, prefix) {
			out = append(out, *l)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *Store) lockKeysOfLocked(sessionID string) []string {
	keys := make([]string, 0, len(s.locksBySession[sessionID]))
	for k := range s.locksBySession[sessionID] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// LockCount is how many locks a session holds.
func (s *Store) LockCount(sessionID string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.locksBySession[sessionID])
}

// Counts returns how many sessions are live and how many locks are held.
func (s *Store) Counts() (liveSessions, locks int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byName), len(s.locks)
}

// NodeAddress returns the gRPC address recorded for a node.
func (s *Store) NodeAddress(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.nodes[id]
	return n.GRPCAddress, ok
}

// EventsAfter returns the retained events with an index above after, oldest
// first, and whether events after `after` were dropped from retention (the
// watcher must then start over from a snapshot).
func (s *Store) EventsAfter(after uint64, limit int) (events []Event, truncated bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if after < s.droppedThrough {
		return nil, true
	}
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Index > after })
	end := len(s.events)
	if limit > 0 && end-i > limit {
		end = i + limit
	}
	return append([]Event(nil), s.events[i:end]...), false
}

// SnapshotEvents describes every live session as a snapshot event, and returns
// the index the description is current at.
func (s *Store) SnapshotEvents() ([]Event, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Event, 0, len(s.byName))
	for _, id := range s.byName {
		x := s.sessions[id]
		out = append(out, Event{Index: s.index, Type: EventSnapshot, Session: *x, At: x.StatusChangedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Session.Name < out[j].Session.Name })
	return out, s.index
}

// record appends an event and wakes watchers. Callers hold s.mu.
func (s *Store) record(e Event) {
	e.Session.TokenHash = nil
	s.events = append(s.events, e)
	if len(s.events) > s.retention {
		drop := len(s.events) - s.retention
		// Drop in chunks so that appends stay amortised O(1).
		drop = max(drop, s.retention/4)
		drop = min(drop, len(s.events)-1)
		s.droppedThrough = s.events[drop-1].Index
		s.events = append([]Event(nil), s.events[drop:]...)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// ApplyRegister adds a session.
func (s *Store) ApplyRegister(index uint64, at time.Time, x Session) (Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byName[x.Name]; ok {
		return Session{}, ErrNameTaken
	}
	if _, ok := s.sessions[x.ID]; ok {
		return Session{}, ErrSessionIDTaken
	}
	x.Status = StatusRegistered
	x.RegisteredAt = at
	x.RegisteredIndex = index
	x.StatusChangedAt = at
	x.ConsecutiveFailures = 0
	s.sessions[x.ID] = &x
	s.byName[x.Name] = x.ID
	s.record(Event{Index: index, Type: EventRegistered, Session: x, At: at})
	return x, nil
}

// Transition is one committed change of a session's liveness.
type Transition struct {
	SessionID string    `json:"session_id"`
	To        Status    `json:"to"`
	LastBeat  time.Time `json:"last_beat,omitzero"`
}

// TransitionResult is what one transition did.
type TransitionResult struct {
	Session       Session
	ReleasedLocks []string
	Err           error
}

// ApplyTransition moves a session between liveness states. Moving to the
// state it is in is a no-op; a final session cannot move.
func (s *Store) ApplyTransition(index uint64, at time.Time, t Transition) TransitionResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.sessions[t.SessionID]
	if !ok {
		return TransitionResult{Err: ErrSessionNotFound}
	}
	if err := LiveErr(x); err != nil {
		return TransitionResult{Session: *x, Err: err}
	}
	if x.Status == t.To {
		return TransitionResult{Session: *x}
	}
	if !t.LastBeat.IsZero() {
		x.LastHeartbeatAt = t.LastBeat
	}
	var ev EventType
	var released []string
	switch t.To {
	case StatusActive:
		ev = EventActive
		if x.Status == StatusSuspect {
			ev = EventRecovered
		}
		x.ConsecutiveFailures = 0
	case StatusSuspect:
		ev = EventSuspect
		x.ConsecutiveFailures++
	case StatusFailed:
		ev = EventFailed
		x.ConsecutiveFailures++
		released = s.endSessionLocked(x)
	case StatusDeregistered:
		ev = EventDeregistered
		released = s.endSessionLocked(x)
	default:
		return TransitionResult{Session: *x, Err: ErrUnknownCommand}
	}
	x.Status = t.To
	x.StatusChangedAt = at
	s.record(Event{Index: index, Type: ev, Session: *x, At: at, ReleasedLocks: released})
	return TransitionResult{Session: *x, ReleasedLocks: released}
}

// endSessionLocked frees a session's name and releases its locks, returning
// their keys. Callers hold s.mu.
func (s *Store) endSessionLocked(x *Session) []string {
	if s.byName[x.Name] == x.ID {
		delete(s.byName, x.Name)
	}
	keys := s.lockKeysOfLocked(x.ID)
	for _, k := range keys {
		delete(s.locks, k)
		s.expiries.remove(k)
	}
	delete(s.locksBySession, x.ID)
	return keys
}

// ApplyPurge forgets final sessions whose status changed before cutoff.
func (s *Store) ApplyPurge(cutoff time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, x := range s.sessions {
		if !x.Status.Live() && x.StatusChangedAt.Before(cutoff) {
			delete(s.sessions, id)
			n++
		}
	}
	return n
}

// ApplyAcquireLock grants a free lock to a live session, with the entry's
// index as fencing token. Acquiring a lock the session already holds renews
// it and keeps its fencing token.
func (s *Store) ApplyAcquireLock(index uint64, at time.Time, key, sessionID string, ttl time.Duration) (Lock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.usableLocked(sessionID)
	if err != nil {
		return Lock{}, err
	}
	if l, ok := s.locks[key]; ok {
		if l.OwnerID != sessionID {
			return *l, ErrLockHeld
		}
		l.TTL = ttl
		l.ExpiresAt = at.Add(ttl)
		s.expiries.set(key, l.ExpiresAt)
		return *l, nil
	}
	l := &Lock{Key: key, OwnerID: x.ID, OwnerName: x.Name, FencingToken: index, AcquiredAt: at, TTL: ttl, ExpiresAt: at.Add(ttl)}
	s.locks[key] = l
	s.expiries.set(key, l.ExpiresAt)
	if s.locksBySession[x.ID] == nil {
		s.locksBySession[x.ID] = map[string]struct{}{}
	}
	s.locksBySession[x.ID][key] = struct{}{}
	return *l, nil
}

// usableLocked returns a session that may take or keep locks.
func (s *Store) usableLocked(sessionID string) (*Session, error) {
	x, ok := s.sessions[sessionID]
	if !ok {
		return nil, ErrSessionNotFound
	}
	if err := LiveErr(x); err != nil {
		return nil, err
	}
	if x.Status == StatusSuspect {
		return nil, ErrSessionSuspect
	}
	return x, nil
}

// heldLocked checks that sessionID holds key under fencing.
func (s *Store) heldLocked(key, sessionID string, fencing uint64) (*Lock, error) {
	l, ok := s.locks[key]
	if !ok {
		return nil, ErrLockNotFound
	}
	if l.OwnerID != sessionID {
		return nil, ErrNotLockOwner
	}
	if l.FencingToken != fencing {
		return nil, ErrStaleFencing
	}
	return l, nil
}

// ApplyRenewLock extends a held lock; a zero ttl keeps the lock's TTL.
func (s *Store) ApplyRenewLock(at time.Time, key, sessionID string, fencing uint64, ttl time.Duration) (Lock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.usableLocked(sessionID); err != nil {
		return Lock{}, err
	}
	l, err := s.heldLocked(key, sessionID, fencing)
	if err != nil {
		return Lock{}, err
	}
	if ttl > 0 {
		l.TTL = ttl
	}
	l.ExpiresAt = at.Add(l.TTL)
	s.expiries.set(key, l.ExpiresAt)
	return *l, nil
}

// ApplyReleaseLock frees a held lock.
func (s *Store) ApplyReleaseLock(key, sessionID string, fencing uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sessionID]; !ok {
		return ErrSessionNotFound
	}
	if _, err := s.heldLocked(key, sessionID, fencing); err != nil {
		return err
	}
	s.deleteLockLocked(key, sessionID)
	return nil
}

func (s *Store) deleteLockLocked(key, sessionID string) {
	delete(s.locks, key)
	s.expiries.remove(key)
	if m := s.locksBySession[sessionID]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(s.locksBySession, sessionID)
		}
	}
}

// ApplyExpireLock frees a lock whose TTL ran out by the leader's time at,
// provided it is still the grant the leader saw (same fencing token) and has
// not been renewed since. It reports whether the lock was freed.
func (s *Store) ApplyExpireLock(at time.Time, key string, fencing uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[key]
	if !ok || l.FencingToken != fencing || at.Before(l.ExpiresAt) {
		return false
	}
	s.deleteLockLocked(key, l.OwnerID)
	return true
}

// ApplySetNode records a node's gRPC address.
func (s *Store) ApplySetNode(n Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[n.ID] = n
}

// ApplyRemoveNode forgets a node.
func (s *Store) ApplyRemoveNode(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, id)
}
