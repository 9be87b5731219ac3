package state

import "sort"

// Dump is the whole state in a form that encodes deterministically, with the
// newest part of the session history: Events holds at most the store's
// snapshot bound, and DroppedThrough names the newest event left out.
type Dump struct {
	Index    uint64    `json:"index"`
	Sessions []Session `json:"sessions"`
	Locks    []Lock    `json:"locks"`
	Nodes    []Node    `json:"nodes"`
	Events   []Event   `json:"events"`
	// Credentials are issued credentials' records (internal/auth); absent
	// from snapshots older than them.
	Credentials    []Credential `json:"credentials,omitempty"`
	DroppedThrough uint64       `json:"dropped_through"`
}

// Dump copies the whole state and the newest snapshotEvents events.
func (s *Store) Dump() Dump {
	s.mu.RLock()
	defer s.mu.RUnlock()
	events, droppedThrough := s.events, s.droppedThrough
	if cut := len(events) - s.snapshotEvents; cut > 0 {
		droppedThrough = events[cut-1].Index
		events = events[cut:]
	}
	d := Dump{
		Index:          s.index,
		Sessions:       make([]Session, 0, len(s.sessions)),
		Locks:          make([]Lock, 0, len(s.locks)),
		Nodes:          make([]Node, 0, len(s.nodes)),
		Events:         append([]Event(nil), events...),
		DroppedThrough: droppedThrough,
	}
	for _, x := range s.sessions {
		d.Sessions = append(d.Sessions, *x)
	}
	for _, l := range s.locks {
		d.Locks = append(d.Locks, *l)
	}
	for _, n := range s.nodes {
		d.Nodes = append(d.Nodes, n)
	}
	for _, c := range s.credentials {
		d.Credentials = append(d.Credentials, *c)
	}
	sortCredentials(d.Credentials)
	sort.Slice(d.Sessions, func(i, j int) bool { return d.Sessions[i].ID < d.Sessions[j].ID })
	sort.Slice(d.Locks, func(i, j int) bool { return d.Locks[i].Key < d.Locks[j].Key })
	sort.Slice(d.Nodes, func(i, j int) bool { return d.Nodes[i].ID < d.Nodes[j].ID })
	return d
}

// Restore replaces the whole state with d and wakes watchers.
func (s *Store) Restore(d Dump) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	s.index = d.Index
	for i := range d.Sessions {
		x := d.Sessions[i]
		s.sessions[x.ID] = &x
		if x.Status.Live() {
			s.byName[x.Name] = x.ID
		}
	}
	for i := range d.Locks {
		l := d.Locks[i]
		s.locks[l.Key] = &l
		s.expiries.set(l.Key, l.ExpiresAt)
		if s.locksBySession[l.OwnerID] == nil {
			s.locksBySession[l.OwnerID] = map[string]struct{}{}
		}
		s.locksBySession[l.OwnerID][l.Key] = struct{}{}
	}
	for _, n := range d.Nodes {
		s.nodes[n.ID] = n
	}
	for i := range d.Credentials {
		c := d.Credentials[i]
		s.credentials[c.ID] = &c
	}
	events, droppedThrough := d.Events, d.DroppedThrough
	if cut := len(events) - s.retention; cut > 0 {
		droppedThrough = events[cut-1].Index
		events = events[cut:]
	}
	s.events = append([]Event(nil), events...)
	s.droppedThrough = droppedThrough
	close(s.changed)
	s.changed = make(chan struct{})
}
