package detect

import (
	"container/heap"
	"math/bits"
	"time"
)

// Options tune an Engine. Zero fields take the defaults below.
type Options struct {
	// ReorderWindow: an event that arrives after a later event of the same
	// student is judged in occurred_at order if it happened no more than this
	// long (event time) before that student's latest event. Default 5 s:
	// enough for a browser's retried batch, small enough that a student's
	// recent events cost little memory.
	ReorderWindow time.Duration
	// ReportDelay is how long a finding is held after the event that
	// triggered it arrived before it is reported. An event of the same
	// student that arrives out of order within that time is taken into
	// account exactly: the finding may move, vanish or appear. Default 200 ms.
	ReportDelay time.Duration
	// IdleGrace is how long after a student's idle deadline the timer waits
	// for events still in flight (the app's batching, the commit) before it
	// reports idle. Default 300 ms.
	IdleGrace time.Duration
	// ClockSkewTolerance: the idle timer never fires before the last event's
	// arrival + idle timeout − this, so that a device clock running behind,
	// or a replay of old events, cannot make a student look idle before a
	// real silence. Default 10 s.
	ClockSkewTolerance time.Duration
	// StateTTL: a student with no event for this long (wall clock) is
	// forgotten (their counts start again if they come back). Default 1 h.
	StateTTL time.Duration
	// Settings returns a classroom's configuration; it is asked on every
	// event, so a change applies to the classroom's next events. Nil means
	// the defaults everywhere.
	Settings func(classroomID string) *Config
}

// Default option values.
const (
	DefaultReorderWindow      = 5 * time.Second
	DefaultReportDelay        = 200 * time.Millisecond
	DefaultIdleGrace          = 300 * time.Millisecond
	DefaultClockSkewTolerance = 10 * time.Second
	DefaultStateTTL           = time.Hour
)

// Engine detects frustration in the classrooms of one partition. It is not
// safe for concurrent use.
type Engine struct {
	opt        Options
	reorder    int64
	classrooms map[string]*classroom
	timers     timerHeap
	held       []heldFinding
	k          emitter // reused: a sink passed as an interface would escape
	out        []Detection
	lastSweep  int64
	students   int
}

// NewEngine returns an empty engine.
func NewEngine(opt Options) *Engine {
	if opt.ReorderWindow <= 0 {
		opt.ReorderWindow = DefaultReorderWindow
	}
	if opt.ReportDelay <= 0 {
		opt.ReportDelay = DefaultReportDelay
	}
	if opt.IdleGrace <= 0 {
		opt.IdleGrace = DefaultIdleGrace
	}
	if opt.ClockSkewTolerance <= 0 {
		opt.ClockSkewTolerance = DefaultClockSkewTolerance
	}
	if opt.StateTTL <= 0 {
		opt.StateTTL = DefaultStateTTL
	}
	if opt.Settings == nil {
		opt.Settings = func(string) *Config { return defaultConfig }
	}
	return &Engine{opt: opt, reorder: int64(opt.ReorderWindow), classrooms: make(map[string]*classroom)}
}

type classroom struct {
	id       string
	students map[string]*student
	// struggles: item → student → event time of their latest struggle
	// detection within the hotspot window.
	struggles map[string]map[string]int64
	hotspotOn map[string]bool
	fired     map[string]int64 // hotspot alert key (item) → last trigger
}

type firedKey struct {
	ind  Indicator
	item string
}

type student struct {
	id  string
	cls *classroom
	// cur is the state as of every event seen; stable as of ReorderWindow
	// before the latest, with pending holding the events since, sorted.
	cur     studentState
	stable  studentState
	pending []sample
	arrival int64 // wall time of the latest event, unix ns
	// fired is the alert record that replays never roll back: the latest
	// trigger per alert key, for the cooldown.
	fired map[firedKey]int64
	// idleAt is the trigger time of the latest idle (the silence the student
	// is in, if nothing came since), idleReported that of the latest idle
	// reported (what a rebuild goes back to).
	idleAt       int64
	idleReported int64
	timerAt      int64 // wall deadline queued in timers; 0 when none
	gone         bool
}

// Students is the number of students the engine holds state for.
func (e *Engine) Students() int { return e.students }

func (e *Engine) classroom(id string) *classroom {
	c := e.classrooms[id]
	if c == nil {
		c = &classroom{id: id, students: make(map[string]*student), struggles: map[string]map[string]int64{},
			hotspotOn: map[string]bool{}, fired: map[string]int64{}}
		e.classrooms[id] = c
	}
	return c
}

func (c *classroom) student(id string, e *Engine) *student {
	s := c.students[id]
	if s == nil {
		s = &student{id: id, cls: c}
		c.students[id] = s
		e.students++
	}
	return s
}

// Observe judges one event (or rating) that arrived at wall time now and
// returns what it found, if anything.
func (e *Engine) Observe(ev Event, now time.Time) []Detection {
	wall := now.UnixNano()
	e.release(wall)
	c := e.classroom(ev.ClassroomID)
	s := c.student(ev.StudentID, e)
	cfg := e.opt.Settings(c.id)
	th := &cfg.Thresholds
	smp := s.sample(&ev)
	smp.arr = wall
	s.arrival = wall
	k := &e.k
	*k = emitter{e: e, s: s, cfg: cfg, app: smp.app, release: wall + int64(e.opt.ReportDelay), cause: smp.t}

	switch latest := s.cur.last; {
	case latest == 0 || smp.t >= latest:
		s.pending = append(s.pending, smp)
		s.cur.apply(&smp, th, k)
	case smp.t > latest-e.reorder:
		// Late but within the window: rebuild cur from stable with the
		// event in its place. Findings the right order reveals go out; those
		// already reported are within their cooldown and stay silent.
		i := len(s.pending)
		for i > 0 && s.pending[i-1].t > smp.t {
			i--
		}
		s.pending = append(s.pending, sample{})
		copy(s.pending[i+1:], s.pending[i:])
		s.pending[i] = smp
		e.cancelHeld(s, s.pending[0].t)
		s.cur = s.stable.clone()
		for j := range s.pending {
			k.app = s.pending[j].app
			k.release = s.pending[j].arr + int64(e.opt.ReportDelay)
			k.cause = s.pending[j].t
			s.cur.apply(&s.pending[j], th, k)
		}
	default:
		// Later than the window: judged now, against the state as it is.
		s.stable.apply(&smp, th, nil)
		s.cur.apply(&smp, th, k)
	}
	// Events older than the window can no longer be reordered: fold them
	// into stable.
	n := 0
	for n < len(s.pending) && s.pending[n].t <= s.cur.last-e.reorder {
		s.stable.apply(&s.pending[n], th, nil)
		n++
	}
	if n > 0 {
		m := copy(s.pending, s.pending[n:])
		clear(s.pending[m:])
		s.pending = s.pending[:m]
	}
	e.armIdle(s, th)
	e.release(wall)
	return e.takeOut()
}

func (e *Engine) takeOut() []Detection {
	if len(e.out) == 0 {
		return nil
	}
	out := make([]Detection, len(e.out))
	copy(out, e.out)
	clear(e.out)
	e.out = e.out[:0]
	return out
}

// sample compacts an event, sharing the strings the student already holds.
func (s *student) sample(ev *Event) sample {
	smp := sample{t: ev.OccurredAt.UnixNano(), kind: ev.Kind, item: ev.ItemID, app: ev.AppID, x: ev.X, y: ev.Y, rating: ev.Rating}
	if smp.app == s.cur.app {
		smp.app = s.cur.app
	}
	if smp.item == s.cur.item {
		smp.item = s.cur.item
	}
	if ev.HasCorrect {
		smp.flags |= flagHasCorrect
		if ev.Correct {
			smp.flags |= flagCorrect
		}
	}
	if ev.HasXY {
		smp.flags |= flagHasXY
	}
	if ev.Kind == KindPageView {
		switch ev.Action {
		case "start":
			smp.flags |= flagStart
		case "finish":
			smp.flags |= flagFinish
		}
	}
	if ev.isDeletion() {
		smp.flags |= flagDeletion
	}
	if ev.isError() {
		smp.flags |= flagError
	}
	return smp
}

// idleDeadline is the wall time at which the student's current silence
// becomes idle: the last event + the idle timeout, never before the last
// arrival + the timeout − the skew tolerance, plus the grace for events in
// flight.
func (e *Engine) idleDeadline(s *student, th *Thresholds) int64 {
	d := s.cur.last + int64(th.IdleTimeout)
	d = max(d, s.arrival+int64(th.IdleTimeout)-int64(e.opt.ClockSkewTolerance))
	return d + int64(e.opt.IdleGrace)
}

func (e *Engine) armIdle(s *student, th *Thresholds) {
	if !s.cur.midItem {
		return
	}
	if d := e.idleDeadline(s, th); s.timerAt == 0 || d < s.timerAt {
		s.timerAt = d
		heap.Push(&e.timers, timer{at: d, s: s})
	}
}

// NextDeadline is a wall time no later than the next idle timer or held
// finding that falls due (Tick may find a timer moved on and re-arm it), or
// the zero time when there is none.
func (e *Engine) NextDeadline() time.Time {
	var next int64
	if len(e.timers) > 0 {
		next = e.timers[0].at
	}
	for i := range e.held {
		if r := e.held[i].release; next == 0 || r < next {
			next = r
		}
	}
	if next == 0 {
		return time.Time{}
	}
	return time.Unix(0, next)
}

// Tick reports the held findings and fires the idle timers due at wall time
// now, and forgets students silent for longer than StateTTL.
func (e *Engine) Tick(now time.Time) []Detection {
	wall := now.UnixNano()
	e.release(wall)
	for len(e.timers) > 0 && e.timers[0].at <= wall {
		tm := heap.Pop(&e.timers).(timer)
		s := tm.s
		if s.gone || s.timerAt != tm.at {
			continue
		}
		s.timerAt = 0
		if !s.cur.midItem {
			continue
		}
		cfg := e.opt.Settings(s.cls.id)
		th := &cfg.Thresholds
		if d := e.idleDeadline(s, th); d > wall {
			s.timerAt = d
			heap.Push(&e.timers, timer{at: d, s: s})
			continue
		}
		trigger := s.cur.last + int64(th.IdleTimeout)
		if s.idleAt >= trigger {
			continue
		}
		k := emitter{e: e, s: s, cfg: cfg, app: s.cur.app, release: wall, cause: s.cur.last}
		item, timeout, silence := s.cur.item, th.IdleTimeout, time.Duration(wall-s.cur.last)
		k.found(Idle, item, trigger, Warning, func() ([]string, map[string]float64) {
			return idleDetail(item, timeout, min(silence, timeout))
		})
	}
	e.release(wall)
	if wall-e.lastSweep >= int64(time.Minute) {
		e.sweep(wall)
		e.lastSweep = wall
	}
	return e.takeOut()
}

// sweep forgets students silent for longer than StateTTL, and alert records
// past their cooldown.
func (e *Engine) sweep(wall int64) {
	ttl := int64(e.opt.StateTTL)
	for cid, c := range e.classrooms {
		cfg := e.opt.Settings(cid)
		cool := int64(cfg.Thresholds.AlertCooldown)
		for id, s := range c.students {
			if wall-s.arrival > ttl {
				s.gone = true
				delete(c.students, id)
				e.students--
				for _, m := range c.struggles {
					delete(m, id)
				}
				continue
			}
			for k, at := range s.fired {
				if s.cur.last-at >= cool {
					delete(s.fired, k)
				}
			}
		}
		if len(c.students) == 0 {
			delete(e.classrooms, cid)
		}
	}
}

// emitter is the sink a student's rules report to: it applies suppression
// while idle, disabled indicators and the per-key cooldown, holds findings
// for the report delay, and feeds struggle detections to the classroom's
// hotspot rule.
type emitter struct {
	e       *Engine
	s       *student
	cfg     *Config
	app     string
	release int64 // wall time at which what is found now is reported
	cause   int64 // occurred_at of the event being judged
}

// heldFinding is a finding waiting for its report time. Student findings are
// cancelled when a late event makes the student's state be rebuilt (the
// rebuild finds again whatever still holds).
type heldFinding struct {
	release   int64
	cause     int64    // occurred_at of the event that triggered it
	s         *student // nil for classroom_hotspot
	c         *classroom
	key       firedKey
	cooldown  int64
	d         Detection
	cancelled bool
}

func (k *emitter) found(ind Indicator, item string, at int64, sev Severity, detail func() ([]string, map[string]float64)) {
	s, th := k.s, &k.cfg.Thresholds
	if ind == Idle {
		s.idleAt = max(s.idleAt, at)
	} else if at < s.idleAt {
		// The student went idle after this happened and nothing has come
		// since: what they did before the silence no longer alerts.
		return
	}
	if ind == Struggle {
		k.e.struggled(s.cls, s.id, item, at, k.cfg, k.app, k.release)
	}
	if !k.cfg.Enabled(ind) {
		return
	}
	fk := firedKey{ind: ind}
	if ind.keyedByItem() {
		fk.item = item
	}
	cool := int64(th.AlertCooldown)
	if last, ok := s.fired[fk]; ok && absDiff(at, last) < cool {
		return
	}
	for i := range k.e.held {
		h := &k.e.held[i]
		if h.s == s && !h.cancelled && h.key == fk && absDiff(at, h.d.TriggeredAt.UnixNano()) < cool {
			return
		}
	}
	reasons, evidence := detail()
	k.e.held = append(k.e.held, heldFinding{release: k.release, cause: k.cause, s: s, c: s.cls, key: fk, cooldown: cool, d: Detection{
		ClassroomID: s.cls.id, StudentID: s.id, AppID: k.app, ItemID: item, Indicator: ind, Severity: sev,
		Reasons: reasons, Evidence: evidence, TriggeredAt: time.Unix(0, at).UTC(),
	}})
}

// cancelHeld drops a student's findings not yet reported that events at or
// after from triggered: a rebuild from the stable state is about to judge
// those events again.
func (e *Engine) cancelHeld(s *student, from int64) {
	s.idleAt = s.idleReported
	for i := range e.held {
		h := &e.held[i]
		if h.s != s || h.cancelled {
			continue
		}
		if h.cause >= from {
			h.cancelled = true
		} else if h.d.Indicator == Idle {
			s.idleAt = max(s.idleAt, h.d.TriggeredAt.UnixNano())
		}
	}
}

// release reports the held findings due at wall time now: it records them
// for the cooldown, escalates severities and appends them to e.out.
func (e *Engine) release(wall int64) {
	n := 0
	for i := range e.held {
		h := e.held[i]
		switch {
		case h.cancelled:
		case h.release > wall:
			e.held[n] = h
			n++
		case h.s == nil:
			e.reportHotspot(&h)
		default:
			e.report(&h)
		}
	}
	clear(e.held[n:])
	e.held = e.held[:n]
}

func (e *Engine) report(h *heldFinding) {
	s, d := h.s, h.d
	at := d.TriggeredAt.UnixNano()
	if last, ok := s.fired[h.key]; ok && absDiff(at, last) < h.cooldown {
		return
	}
	if s.fired == nil {
		s.fired = make(map[firedKey]int64, 4)
	}
	s.fired[h.key] = max(s.fired[h.key], at)
	if d.Indicator == Idle {
		s.idleReported = max(s.idleReported, at)
	}
	var others uint16
	for f, t := range s.fired {
		if f.ind != d.Indicator && absDiff(at, t) < h.cooldown {
			others |= 1 << f.ind
		}
	}
	if n := bits.OnesCount16(others); n >= 2 {
		if d.Severity < Critical {
			d.Severity++
		}
		d.Reasons = append(d.Reasons, "together with "+plural(n, "other sign", "other signs")+
			" of frustration in the last "+span(time.Duration(h.cooldown)))
	}
	e.out = append(e.out, d)
}

func (e *Engine) reportHotspot(h *heldFinding) {
	c, at := h.c, h.d.TriggeredAt.UnixNano()
	if last, ok := c.fired[h.key.item]; ok && absDiff(at, last) < h.cooldown {
		return
	}
	c.fired[h.key.item] = max(c.fired[h.key.item], at)
	e.out = append(e.out, h.d)
}

// struggled records a student's struggle detection on an item and judges
// classroom_hotspot: "≥ 3 students, and ≥ 30 % of the classroom's active
// students (any event within 5 min), got a struggle detection on the same
// item within 5 min".
func (e *Engine) struggled(c *classroom, studentID, item string, at int64, cfg *Config, app string, release int64) {
	th := &cfg.Thresholds
	win := int64(th.HotspotWindow)
	m := c.struggles[item]
	if m == nil {
		m = make(map[string]int64)
		c.struggles[item] = m
	}
	if at > m[studentID] {
		m[studentID] = at
	}
	n := 0
	for id, t := range m {
		switch {
		case t <= at && at-t < win:
			n++
		case t <= at:
			delete(m, id)
		}
	}
	active := 0
	for _, s := range c.students {
		if s.cur.last > at-win {
			active++
		}
	}
	active = max(active, n)
	frac := float64(n) / float64(max(active, 1))
	on := n >= int(th.HotspotMinStudents) && frac >= th.HotspotMinFraction-1e-9
	was := c.hotspotOn[item]
	c.hotspotOn[item] = on
	if !on || was || !cfg.Enabled(ClassroomHotspot) {
		return
	}
	sev := High
	if frac >= 0.5 {
		sev = Critical
	}
	e.held = append(e.held, heldFinding{release: release, c: c, key: firedKey{ind: ClassroomHotspot, item: item},
		cooldown: int64(th.AlertCooldown), d: Detection{
			ClassroomID: c.id, AppID: app, ItemID: item, Indicator: ClassroomHotspot, Severity: sev,
			Reasons: []string{itoa(int32(n)) + " of " + plural(active, "active student", "active students") + " (" + percent(frac) + ") struggled on " +
				itemName(item) + " within " + span(th.HotspotWindow)},
			Evidence:    map[string]float64{"students": float64(n), "active_students": float64(active), "fraction": frac},
			TriggeredAt: time.Unix(0, at).UTC(),
		}})
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

type timer struct {
	at int64
	s  *student
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}
