package detect

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"
)

// snapshotVersion is the first byte of a snapshot; a detector refuses one it
// does not know (and rebuilds from events instead).
const snapshotVersion = 1

// ErrBadSnapshot is returned by Restore for bytes it cannot read.
var ErrBadSnapshot = errors.New("detector snapshot unreadable")

// Snapshot encodes the engine's state: per student the stable state and the
// events since (the current state is rebuilt from them), the alert records,
// the classrooms' hotspot state and the findings still held. A partition's
// checkpoint stores it beside the position it reflects.
func (e *Engine) Snapshot() []byte {
	w := &writer{b: make([]byte, 0, 256*e.students+64)}
	w.u(snapshotVersion)
	w.u(uint64(len(e.classrooms)))
	for _, c := range e.classrooms {
		w.s(c.id)
		w.u(uint64(len(c.students)))
		for _, s := range c.students {
			w.student(s)
		}
		w.u(uint64(len(c.struggles)))
		for item, m := range c.struggles {
			w.s(item)
			w.u(uint64(len(m)))
			for id, t := range m {
				w.s(id)
				w.i(t)
			}
		}
		w.u(uint64(len(c.hotspotOn)))
		for item, on := range c.hotspotOn {
			w.s(item)
			w.bo(on)
		}
		w.u(uint64(len(c.fired)))
		for item, t := range c.fired {
			w.s(item)
			w.i(t)
		}
	}
	live := 0
	for i := range e.held {
		if !e.held[i].cancelled {
			live++
		}
	}
	w.u(uint64(live))
	for i := range e.held {
		h := &e.held[i]
		if h.cancelled {
			continue
		}
		w.i(h.release)
		w.i(h.cause)
		w.bo(h.s != nil)
		w.u(uint64(h.key.ind))
		w.s(h.key.item)
		w.i(h.cooldown)
		w.detection(&h.d)
	}
	return w.b
}

// Restore replaces the engine's state with a snapshot. The idle timers are
// armed again from the restored students.
func (e *Engine) Restore(b []byte) error {
	r := &reader{b: b, strs: map[string]string{}}
	if r.u() != snapshotVersion {
		return ErrBadSnapshot
	}
	classrooms := make(map[string]*classroom)
	students := 0
	nc := r.n()
	for range nc {
		c := &classroom{id: r.s(), students: map[string]*student{}, struggles: map[string]map[string]int64{},
			hotspotOn: map[string]bool{}, fired: map[string]int64{}}
		ns := r.n()
		for range ns {
			s := r.student(c)
			if r.err != nil {
				return r.err
			}
			c.students[s.id] = s
			students++
		}
		for range r.n() {
			item := r.s()
			m := map[string]int64{}
			for range r.n() {
				id := r.s()
				m[id] = r.i()
			}
			c.struggles[item] = m
		}
		for range r.n() {
			item := r.s()
			c.hotspotOn[item] = r.bo()
		}
		for range r.n() {
			item := r.s()
			c.fired[item] = r.i()
		}
		if r.err != nil {
			return r.err
		}
		classrooms[c.id] = c
	}
	var held []heldFinding
	for range r.n() {
		h := heldFinding{release: r.i(), cause: r.i()}
		ofStudent := r.bo()
		h.key = firedKey{ind: Indicator(r.u()), item: r.s()}
		h.cooldown = r.i()
		r.detection(&h.d)
		if r.err != nil {
			return r.err
		}
		h.c = classrooms[h.d.ClassroomID]
		if h.c == nil {
			return ErrBadSnapshot
		}
		if ofStudent {
			h.s = h.c.students[h.d.StudentID]
			if h.s == nil {
				return ErrBadSnapshot
			}
		}
		held = append(held, h)
	}
	if r.err != nil || len(r.b) != 0 {
		return ErrBadSnapshot
	}
	e.classrooms, e.students, e.held, e.timers = classrooms, students, held, nil
	for _, c := range classrooms {
		cfg := e.opt.Settings(c.id)
		for _, s := range c.students {
			s.cur = s.stable.clone()
			for j := range s.pending {
				s.cur.apply(&s.pending[j], &cfg.Thresholds, nil)
			}
			e.armIdle(s, &cfg.Thresholds)
		}
	}
	return nil
}

// RecordReported tells the engine about a finding that is already stored
// (a takeover loads the partition's recent frustration events), so that the
// cooldown holds across owners: a replay that finds the same episode at a
// slightly different time stays silent.
func (e *Engine) RecordReported(d Detection) {
	at := d.TriggeredAt.UnixNano()
	c := e.classroom(d.ClassroomID)
	if d.Indicator == ClassroomHotspot {
		c.fired[d.ItemID] = max(c.fired[d.ItemID], at)
		return
	}
	s := c.student(d.StudentID, e)
	s.arrival = max(s.arrival, at) // forgotten StateTTL after, like a student
	fk := firedKey{ind: d.Indicator}
	if d.Indicator.keyedByItem() {
		fk.item = d.ItemID
	}
	if s.fired == nil {
		s.fired = make(map[firedKey]int64, 4)
	}
	s.fired[fk] = max(s.fired[fk], at)
	if d.Indicator == Idle {
		s.idleReported = max(s.idleReported, at)
		s.idleAt = max(s.idleAt, at)
	}
}

type writer struct{ b []byte }

func (w *writer) u(v uint64)  { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) i(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) s(v string)  { w.u(uint64(len(v))); w.b = append(w.b, v...) }
func (w *writer) f(v float64) { w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v)) }
func (w *writer) bo(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *writer) student(s *student) {
	w.s(s.id)
	w.state(&s.stable)
	w.u(uint64(len(s.pending)))
	for i := range s.pending {
		p := &s.pending[i]
		w.i(p.t)
		w.i(p.arr)
		w.s(p.item)
		w.s(p.app)
		w.i(int64(p.x))
		w.i(int64(p.y))
		w.i(int64(p.rating))
		w.u(uint64(p.kind))
		w.u(uint64(p.flags))
	}
	w.i(s.arrival)
	w.u(uint64(len(s.fired)))
	for k, t := range s.fired {
		w.u(uint64(k.ind))
		w.s(k.item)
		w.i(t)
	}
	w.i(s.idleAt)
	w.i(s.idleReported)
}

func (w *writer) state(st *studentState) {
	w.i(st.last)
	w.bo(st.midItem)
	w.s(st.item)
	w.s(st.app)
	w.i(int64(st.chainLen))
	w.i(st.chainStart)
	w.i(st.lastClick)
	w.i(int64(st.clickX))
	w.i(int64(st.clickY))
	w.i(int64(st.chainStep))
	w.bo(st.rageOn)
	w.i(st.lastError)
	w.bo(st.hasError)
	w.u(st.rapid)
	w.i(int64(st.rapidN))
	w.bo(st.rapidOn)
	w.u(uint64(len(st.errors)))
	for _, t := range st.errors {
		w.i(t)
	}
	w.bo(st.burstOn)
	w.u(uint64(len(st.keys)))
	for _, t := range st.keys {
		w.i(t)
	}
	w.bo(st.thrashOn)
	w.u(uint64(len(st.items)))
	for _, it := range st.items {
		w.s(it.id)
		w.i(int64(it.attempts))
		w.u(it.recent)
		w.i(it.touched)
		w.i(int64(it.streak))
		w.bo(it.mastered)
		w.bo(it.struggleOn)
		w.bo(it.wheelOn)
	}
}

func (w *writer) detection(d *Detection) {
	w.s(d.ClassroomID)
	w.s(d.StudentID)
	w.s(d.AppID)
	w.s(d.ItemID)
	w.u(uint64(d.Indicator))
	w.u(uint64(d.Severity))
	w.u(uint64(len(d.Reasons)))
	for _, r := range d.Reasons {
		w.s(r)
	}
	keys := make([]string, 0, len(d.Evidence))
	for k := range d.Evidence {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.u(uint64(len(keys)))
	for _, k := range keys {
		w.s(k)
		w.f(d.Evidence[k])
	}
	w.i(d.TriggeredAt.UnixNano())
}

type reader struct {
	b    []byte
	err  error
	strs map[string]string
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = ErrBadSnapshot
	}
	r.b = nil
}

func (r *reader) u() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) i() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// n reads a count, refusing one larger than the bytes left could hold.
func (r *reader) n() int {
	v := r.u()
	if v > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *reader) s() string {
	n := r.n()
	if r.err != nil {
		return ""
	}
	raw := r.b[:n]
	r.b = r.b[n:]
	if s, ok := r.strs[string(raw)]; ok {
		return s
	}
	s := string(raw)
	r.strs[s] = s
	return s
}

func (r *reader) f() float64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *reader) bo() bool {
	if len(r.b) < 1 {
		r.fail()
		return false
	}
	v := r.b[0] != 0
	r.b = r.b[1:]
	return v
}

func (r *reader) student(c *classroom) *student {
	s := &student{id: r.s(), cls: c}
	r.state(&s.stable)
	for range r.n() {
		s.pending = append(s.pending, sample{t: r.i(), arr: r.i(), item: r.s(), app: r.s(), x: int32(r.i()), y: int32(r.i()),
			rating: int32(r.i()), kind: Kind(r.u()), flags: uint8(r.u())})
	}
	s.arrival = r.i()
	if n := r.n(); n > 0 {
		s.fired = make(map[firedKey]int64, n)
		for range n {
			k := firedKey{ind: Indicator(r.u()), item: r.s()}
			s.fired[k] = r.i()
		}
	}
	s.idleAt = r.i()
	s.idleReported = r.i()
	return s
}

func (r *reader) state(st *studentState) {
	st.last = r.i()
	st.midItem = r.bo()
	st.item = r.s()
	st.app = r.s()
	st.chainLen = int32(r.i())
	st.chainStart = r.i()
	st.lastClick = r.i()
	st.clickX = int32(r.i())
	st.clickY = int32(r.i())
	st.chainStep = int32(r.i())
	st.rageOn = r.bo()
	st.lastError = r.i()
	st.hasError = r.bo()
	st.rapid = r.u()
	st.rapidN = int32(r.i())
	st.rapidOn = r.bo()
	for range r.n() {
		st.errors = append(st.errors, r.i())
	}
	st.burstOn = r.bo()
	for range r.n() {
		st.keys = append(st.keys, r.i())
	}
	st.thrashOn = r.bo()
	for range r.n() {
		it := itemEntry{id: r.s()}
		it.attempts = int32(r.i())
		it.recent = r.u()
		it.touched = r.i()
		it.streak = int32(r.i())
		it.mastered = r.bo()
		it.struggleOn = r.bo()
		it.wheelOn = r.bo()
		st.items = append(st.items, it)
	}
}

func (r *reader) detection(d *Detection) {
	d.ClassroomID, d.StudentID, d.AppID, d.ItemID = r.s(), r.s(), r.s(), r.s()
	d.Indicator = Indicator(r.u())
	d.Severity = Severity(r.u())
	for range r.n() {
		d.Reasons = append(d.Reasons, r.s())
	}
	if n := r.n(); n > 0 {
		d.Evidence = make(map[string]float64, n)
		for range n {
			k := r.s()
			d.Evidence[k] = r.f()
		}
	}
	d.TriggeredAt = time.Unix(0, r.i()).UTC()
}
