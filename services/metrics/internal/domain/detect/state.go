package detect

import (
	"math/bits"
	"slices"
	"time"
)

// sample is an event as the detector keeps it: small, because a student's
// recent events are held for the reorder window.
type sample struct {
	t      int64 // occurred_at, unix ns
	arr    int64 // arrival, wall unix ns
	item   string
	app    string
	x, y   int32
	rating int32
	kind   Kind
	flags  uint8
}

const (
	flagCorrect uint8 = 1 << iota
	flagHasCorrect
	flagHasXY
	flagStart
	flagFinish
	flagDeletion
	flagError
)

func (s *sample) has(f uint8) bool { return s.flags&f != 0 }

// sink receives what a student's rules found. state.apply calls it only on a
// transition; detail builds the reasons and evidence only if they are needed.
type sink interface {
	found(ind Indicator, item string, at int64, sev Severity, detail func() ([]string, map[string]float64))
}

// itemState is what a student did on one item.
type itemState struct {
	attempts   int32
	recent     uint64 // correctness of the latest attempts, newest in bit 0
	touched    int64
	streak     int32 // correct attempts in a row
	mastered   bool
	struggleOn bool
	wheelOn    bool
}

// studentState is everything the rules of one student need. It is a value
// that can be cloned: the engine keeps one as of the reorder window ago and
// one as of now.
type studentState struct {
	last    int64 // latest occurred_at applied, unix ns; 0 before any
	midItem bool
	item    string // the item started, while midItem
	app     string

	// rage_click
	chainLen   int32
	chainStart int64
	lastClick  int64
	clickX     int32
	clickY     int32
	chainStep  int32 // the largest step of the chain, px
	rageOn     bool

	// rapid_guessing
	lastError int64
	hasError  bool
	rapid     uint64 // "came < max delay after an error" of the latest attempts
	rapidN    int32  // attempts seen, up to MaxAttemptWindow
	rapidOn   bool

	// error_burst
	errors  []int64 // error times, sorted
	burstOn bool

	// keystroke_thrash
	keys     []int64 // keystroke time << 1 | deletion, sorted
	thrashOn bool

	// items: the items attempted lately, most recent last.
	items []itemEntry
}

type itemEntry struct {
	id string
	itemState
}

func (s *studentState) clone() studentState {
	c := *s
	c.errors = slices.Clone(s.errors)
	c.keys = slices.Clone(s.keys)
	c.items = slices.Clone(s.items)
	return c
}

// A student's state remembers at most maxItems items, and forgets an item
// not attempted for itemTTL (event time): a student who comes back to it
// later starts its counts again.
const (
	maxItems = 8
	itemTTL  = int64(30 * time.Minute)
)

// maxRing bounds the error and keystroke windows, whatever their length.
const maxRing = 4096

// apply judges one event against the student's state and moves the state on.
// k receives transitions; nil applies silently (the stable copy).
func (s *studentState) apply(e *sample, th *Thresholds, k sink) {
	t := e.t
	if s.last != 0 && s.midItem && t-s.last >= int64(th.IdleTimeout) && k != nil {
		s.foundIdle(k, th, t-s.last)
	}
	if t > s.last || s.last == 0 {
		s.last = t
	}
	if e.app != "" {
		s.app = e.app
	}
	switch e.kind {
	case KindPageView:
		switch {
		case e.has(flagStart) && e.item != "":
			s.midItem, s.item = true, e.item
		case e.has(flagFinish):
			s.midItem, s.item = false, ""
		}
	case KindClick:
		s.click(e, th, k)
	case KindAttempt:
		s.attempt(e, th, k)
	case KindKeystroke:
		s.keystroke(e, th, k)
	case KindRating:
		if e.rating <= th.LowRatingMaxRating && k != nil {
			sev := Warning
			if e.rating <= 1 {
				sev = High
			}
			r, item := e.rating, e.item
			k.found(LowRating, item, t, sev, func() ([]string, map[string]float64) {
				return []string{"rated " + itemName(item) + " " + itoa(r) + " of 5"},
					map[string]float64{"rating": float64(r), "max_rating": float64(th.LowRatingMaxRating)}
			})
		}
	}
	if e.has(flagError) {
		s.errorAt(t, th, k)
	}
}

// foundIdle reports the silence before the event being applied (a silence a
// later event reveals, e.g. in event-time replay). The engine's timer reports
// the same silence at the same trigger time when it comes first.
func (s *studentState) foundIdle(k sink, th *Thresholds, silence int64) {
	item, timeout := s.item, th.IdleTimeout
	k.found(Idle, item, s.last+int64(timeout), Warning, func() ([]string, map[string]float64) {
		return idleDetail(item, timeout, time.Duration(silence))
	})
}

func idleDetail(item string, timeout, silence time.Duration) ([]string, map[string]float64) {
	return []string{"no activity for " + span(timeout) + " while working on " + itemName(item)},
		map[string]float64{"idle_timeout_seconds": timeout.Seconds(), "silence_seconds": silence.Seconds()}
}

// click: rage_click is "a chain of ≥ 3 clicks, each < 1 s and < 30 px
// (|dx| + |dy|) after the previous one". A click without a position cannot be
// measured and ends the chain.
func (s *studentState) click(e *sample, th *Thresholds, k sink) {
	t := e.t
	if !e.has(flagHasXY) {
		s.chainLen, s.rageOn, s.lastClick = 0, false, t
		return
	}
	step := abs32(e.x-s.clickX) + abs32(e.y-s.clickY)
	if s.chainLen > 0 && t-s.lastClick < int64(th.RageClickMaxInterval) && float64(step) < th.RageClickMaxDistancePx {
		s.chainLen++
		s.chainStep = max(s.chainStep, step)
	} else {
		s.chainLen, s.chainStart, s.chainStep = 1, t, 0
	}
	s.lastClick, s.clickX, s.clickY = t, e.x, e.y
	on := s.chainLen >= th.RageClickMinClicks
	if on && !s.rageOn && k != nil {
		n, d, stepPx := s.chainLen, time.Duration(t-s.chainStart), s.chainStep
		k.found(RageClick, e.item, t, Warning, func() ([]string, map[string]float64) {
			return []string{plural(int(n), "click", "clicks") + " within " + span(d) + " at the same spot"},
				map[string]float64{"clicks": float64(n), "seconds": d.Seconds(), "max_step_px": float64(stepPx)}
		})
	}
	s.rageOn = on
}

// attempt: struggle, wheel_spinning and rapid_guessing.
func (s *studentState) attempt(e *sample, th *Thresholds, k sink) {
	t := e.t
	correct := e.has(flagHasCorrect) && e.has(flagCorrect)

	// rapid_guessing: "≥ 3 of the student's last 10 attempts (any item) came
	// < 2 s after the student's previous error".
	guess := s.hasError && t-s.lastError < int64(th.RapidGuessingMaxDelay)
	s.rapid = s.rapid<<1 | b2u(guess)
	if s.rapidN < MaxAttemptWindow {
		s.rapidN++
	}
	w := th.RapidGuessingWindowAttempts
	guesses := int32(bits.OnesCount64(s.rapid & mask(w)))
	on := guesses >= th.RapidGuessingMinGuesses
	if on && !s.rapidOn && k != nil {
		n := min(s.rapidN, w)
		delay := th.RapidGuessingMaxDelay
		k.found(RapidGuessing, e.item, t, Warning, func() ([]string, map[string]float64) {
			return []string{itoa(guesses) + " of the last " + plural(int(n), "attempt", "attempts") + " came less than " + span(delay) + " after an error"},
				map[string]float64{"guesses": float64(guesses), "attempts": float64(n), "max_delay_seconds": delay.Seconds()}
		})
	}
	s.rapidOn = on

	// Per item.
	it := s.itemFor(e.item, t)
	it.touched = t
	it.attempts++
	it.recent = it.recent<<1 | b2u(correct)
	if correct {
		it.streak++
		if it.streak >= MasteryStreak {
			it.mastered = true
		}
	} else {
		it.streak = 0
	}

	// struggle: "at least 10 attempts on one item, and ≤ 3 of the last 10
	// correct".
	sw := th.StruggleWindowAttempts
	right := int32(bits.OnesCount64(it.recent & mask(sw)))
	on = it.attempts >= sw && right <= th.StruggleMaxCorrect
	if on && !it.struggleOn && k != nil {
		item := e.item
		k.found(Struggle, item, t, Warning, func() ([]string, map[string]float64) {
			return []string{itoa(right) + " of the last " + itoa(sw) + " attempts on " + itemName(item) + " correct"},
				map[string]float64{"correct": float64(right), "window_attempts": float64(sw), "attempts": float64(it.attempts)}
		})
	}
	it.struggleOn = on

	// wheel_spinning: "≥ 10 attempts on one item without mastery (3 correct
	// in a row)".
	on = !it.mastered && it.attempts >= th.WheelSpinningMinAttempts
	if on && !it.wheelOn && k != nil {
		item, n := e.item, it.attempts
		k.found(WheelSpinning, item, t, High, func() ([]string, map[string]float64) {
			return []string{plural(int(n), "attempt", "attempts") + " on " + itemName(item) + " without " + itoa(MasteryStreak) + " correct in a row"},
				map[string]float64{"attempts": float64(n), "mastery_streak": MasteryStreak}
		})
	}
	it.wheelOn = on
}

// itemFor finds the item's state, making room for it (forgetting items not
// attempted for itemTTL, then the least recently attempted) when it is new.
func (s *studentState) itemFor(id string, t int64) *itemState {
	for i := len(s.items) - 1; i >= 0; i-- {
		if s.items[i].id == id {
			return &s.items[i].itemState
		}
	}
	s.items = slices.DeleteFunc(s.items, func(e itemEntry) bool { return t-e.touched >= itemTTL })
	if len(s.items) >= maxItems {
		oldest := 0
		for i := range s.items {
			if s.items[i].touched < s.items[oldest].touched {
				oldest = i
			}
		}
		s.items = slices.Delete(s.items, oldest, oldest+1)
	}
	s.items = append(s.items, itemEntry{id: id})
	return &s.items[len(s.items)-1].itemState
}

// errorAt: error_burst is "≥ 5 errors within 60 s"; every error also becomes
// "the student's previous error" for rapid guessing.
func (s *studentState) errorAt(t int64, th *Thresholds, k sink) {
	if !s.hasError || t >= s.lastError {
		s.lastError, s.hasError = t, true
	}
	win := int64(th.ErrorBurstWindow)
	s.errors = insertSorted(s.errors, t)
	s.errors = trimBefore(s.errors, s.errors[len(s.errors)-1]-win, 0)
	n, first := countWithin(s.errors, t, win, 0)
	on := n >= int(th.ErrorBurstMinErrors)
	if on && !s.burstOn && k != nil {
		d := time.Duration(t - first)
		k.found(ErrorBurst, "", t, Warning, func() ([]string, map[string]float64) {
			return []string{plural(n, "error", "errors") + " within " + span(d)},
				map[string]float64{"errors": float64(n), "seconds": d.Seconds(), "window_seconds": th.ErrorBurstWindow.Seconds()}
		})
	}
	s.burstOn = on
}

// keystroke: keystroke_thrash is "≥ 20 keystrokes within 30 s, ≥ 50 % of them
// deletions".
func (s *studentState) keystroke(e *sample, th *Thresholds, k sink) {
	t := e.t
	win := int64(th.KeystrokeThrashWindow)
	s.keys = insertSorted(s.keys, t<<1|int64(b2u(e.has(flagDeletion))))
	s.keys = trimBefore(s.keys, s.keys[len(s.keys)-1]>>1-win, 1)
	n, dels, first := 0, 0, t
	for i := len(s.keys) - 1; i >= 0; i-- {
		kt := s.keys[i] >> 1
		if kt > t {
			continue
		}
		if t-kt >= win {
			break
		}
		n++
		dels += int(s.keys[i] & 1)
		first = kt
	}
	ratio := 0.0
	if n > 0 {
		ratio = float64(dels) / float64(n)
	}
	on := n >= int(th.KeystrokeThrashMinKeystrokes) && ratio >= th.KeystrokeThrashMinDeletionRatio-1e-12
	if on && !s.thrashOn && k != nil {
		d := time.Duration(t - first)
		k.found(KeystrokeThrash, e.item, t, Info, func() ([]string, map[string]float64) {
			return []string{itoa(int32(dels)) + " of " + plural(n, "keystroke", "keystrokes") + " within " + span(d) + " were deletions (" + percent(ratio) + ")"},
				map[string]float64{"keystrokes": float64(n), "deletions": float64(dels), "deletion_ratio": ratio, "seconds": d.Seconds()}
		})
	}
	s.thrashOn = on
}

// countWithin counts the entries e ≤ now with now − e < w ("within W"), in a
// sorted ring whose values are times shifted left by shift bits, and returns
// the earliest of them.
func countWithin(ring []int64, now, w int64, shift uint) (n int, first int64) {
	first = now
	for i := len(ring) - 1; i >= 0; i-- {
		v := ring[i] >> shift
		if v > now {
			continue
		}
		if now-v >= w {
			break
		}
		n++
		first = v
	}
	return n, first
}

// trimBefore drops the entries at or before cut (they can never be "within
// W" again) and keeps the ring under maxRing.
func trimBefore(ring []int64, cut int64, shift uint) []int64 {
	i := 0
	for i < len(ring) && ring[i]>>shift <= cut {
		i++
	}
	if len(ring)-i > maxRing {
		i = len(ring) - maxRing
	}
	if i == 0 {
		return ring
	}
	n := copy(ring, ring[i:])
	return ring[:n]
}

// insertSorted inserts v after every entry ≤ v (arrival order among equals).
func insertSorted(ring []int64, v int64) []int64 {
	i := len(ring)
	for i > 0 && ring[i-1] > v {
		i--
	}
	return slices.Insert(ring, i, v)
}

func mask(w int32) uint64 {
	if w >= 64 {
		return ^uint64(0)
	}
	return 1<<uint(w) - 1
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

func itoa(v int32) string { return formatInt(int64(v)) }
