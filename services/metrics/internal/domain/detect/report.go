package detect

import (
	"math/bits"
	"time"
)

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
