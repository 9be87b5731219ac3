package detect

import (
	"container/heap"
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
