package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

// DefaultSubscriberBuffer is how many alerts a subscription may have waiting
// before it is cut as too slow: each subscription's memory is bounded by it.
const DefaultSubscriberBuffer = 256

// HeartbeatInterval is how long a subscription may stay silent before it is
// sent a heartbeat.
const HeartbeatInterval = 15 * time.Second

// pollInterval is the safety net under notifications: the hub reads new
// alerts at least this often even if no notification arrives.
const pollInterval = time.Second

// readBatch bounds one read of new alerts.
const readBatch = 1000

// TooSlowError ends a subscription whose client did not keep up. The client
// resumes with after_alert_id = AfterID and misses nothing.
type TooSlowError struct {
	AfterID uint64
	Buffer  int
}

func (e *TooSlowError) Error() string {
	return fmt.Sprintf("subscriber fell more than %d alerts behind; resume with after_alert_id=%d", e.Buffer, e.AfterID)
}

// ShutdownError ends subscriptions when the dashboard stops; the client
// resumes elsewhere with after_alert_id = AfterID.
type ShutdownError struct{ AfterID uint64 }

func (e *ShutdownError) Error() string {
	return fmt.Sprintf("the dashboard is shutting down; resume with after_alert_id=%d", e.AfterID)
}

// Hub fans new alerts out to this replica's live subscriptions. It reads new
// alerts from the repository (the only source of truth, so every replica sees
// every alert, whichever replica's follower wrote it) when poked by the local
// follower, by a notification from another replica, or at least every
// pollInterval, and keeps each teacher's classroom assignments current so
// that an assignment reaches live subscriptions without a reconnection.
type Hub struct {
	repo   alert.Repository
	log    *zap.Logger
	buffer int
	poke   chan struct{}
	// metrics is set by NewMetrics before the hub runs; nil records nothing.
	metrics *Metrics

	mu       sync.Mutex
	ready    bool
	closed   bool
	lastID   uint64
	teachers map[string]*teacherSubs
	// byClassroom indexes the classrooms of teachers with subscriptions.
	byClassroom map[string]map[string]*teacherSubs
}

type teacherSubs struct {
	id         string
	classrooms map[string]bool
	subs       map[*subscription]struct{}
}

type subscription struct {
	teacher     string
	requested   map[string]bool // nil: every classroom of the teacher
	minSeverity alert.Severity
	startID     uint64
	ch          chan *alert.Alert
	cut         chan struct{}
	cutErr      error
}

// NewHub returns a hub; buffer ≤ 0 is DefaultSubscriberBuffer.
func NewHub(repo alert.Repository, buffer int, log *zap.Logger) *Hub {
	if buffer <= 0 {
		buffer = DefaultSubscriberBuffer
	}
	return &Hub{repo: repo, log: log, buffer: buffer, poke: make(chan struct{}, 1),
		teachers: map[string]*teacherSubs{}, byClassroom: map[string]map[string]*teacherSubs{}}
}

// Poke says new alerts may be stored.
func (h *Hub) Poke() {
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// Start reads where alerts stand; subscriptions wait for it.
func (h *Hub) Start(ctx context.Context) error {
	last, err := h.repo.LastAlertID(ctx)
	if err != nil {
		return fmt.Errorf("read the last alert id: %w", err)
	}
	h.mu.Lock()
	h.lastID, h.ready = last, true
	h.mu.Unlock()
	return nil
}

// Run delivers new alerts until ctx ends, then cuts every subscription.
func (h *Hub) Run(ctx context.Context) {
	defer h.close()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.poke:
		case <-tick.C:
		}
		if err := h.deliver(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("read new alerts", zap.Error(err))
		}
	}
}

func (h *Hub) deliver(ctx context.Context) error {
	for {
		h.mu.Lock()
		after := h.lastID
		h.mu.Unlock()
		alerts, err := h.repo.AlertsAfter(ctx, after, readBatch)
		if err != nil {
			return err
		}
		h.publish(alerts)
		if len(alerts) < readBatch {
			return nil
		}
	}
}

func (h *Hub) publish(alerts []alert.Alert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range alerts {
		a := &alerts[i]
		if a.ID <= h.lastID {
			continue
		}
		h.lastID = a.ID
		for _, ts := range h.byClassroom[a.ClassroomID] {
			for s := range ts.subs {
				if a.Severity < s.minSeverity || (s.requested != nil && !s.requested[a.ClassroomID]) {
					continue
				}
				select {
				case s.ch <- a:
				default:
					h.cutLocked(ts, s, nil)
				}
			}
		}
	}
}

// cutLocked ends s; err nil means "too slow".
func (h *Hub) cutLocked(ts *teacherSubs, s *subscription, err error) {
	if _, ok := ts.subs[s]; !ok {
		return
	}
	s.cutErr = err
	close(s.cut)
	if err == nil {
		h.metrics.slowCut()
	}
	h.removeLocked(ts, s)
}

func (h *Hub) removeLocked(ts *teacherSubs, s *subscription) {
	delete(ts.subs, s)
	if len(ts.subs) > 0 {
		return
	}
	delete(h.teachers, ts.id)
	for c := range ts.classrooms {
		h.unindexLocked(c, ts)
	}
}

func (h *Hub) indexLocked(classroom string, ts *teacherSubs) {
	m := h.byClassroom[classroom]
	if m == nil {
		m = map[string]*teacherSubs{}
		h.byClassroom[classroom] = m
	}
	m[ts.id] = ts
}

func (h *Hub) unindexLocked(classroom string, ts *teacherSubs) {
	if m := h.byClassroom[classroom]; m != nil {
		delete(m, ts.id)
		if len(m) == 0 {
			delete(h.byClassroom, classroom)
		}
	}
}

func (h *Hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, ts := range h.teachers {
		for s := range ts.subs {
			h.cutLocked(ts, s, &ShutdownError{})
		}
	}
}

// TeacherChanged re-reads a teacher's classrooms if they have subscriptions.
func (h *Hub) TeacherChanged(ctx context.Context, teacherID string) error {
	h.mu.Lock()
	_, watched := h.teachers[teacherID]
	h.mu.Unlock()
	if !watched {
		return nil
	}
	assigned, err := h.repo.TeacherClassrooms(ctx, teacherID)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ts := h.teachers[teacherID]; ts != nil {
		h.setClassroomsLocked(ts, assigned)
	}
	return nil
}

// AllTeachersChanged re-reads every watched teacher's classrooms (after a
// lost notification connection).
func (h *Hub) AllTeachersChanged(ctx context.Context) error {
	h.mu.Lock()
	ids := make([]string, 0, len(h.teachers))
	for id := range h.teachers {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, id := range ids {
		if err := h.TeacherChanged(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (h *Hub) setClassroomsLocked(ts *teacherSubs, assigned []alert.Assignment) {
	now := make(map[string]bool, len(assigned))
	for _, a := range assigned {
		now[a.ClassroomID] = true
	}
	for c := range ts.classrooms {
		if !now[c] {
			h.unindexLocked(c, ts)
		}
	}
	for c := range now {
		h.indexLocked(c, ts)
	}
	ts.classrooms = now
}

// Subscribe streams alerts of a teacher's classrooms with ids above afterID
// (0: the unresolved ones) to send, first those stored, then new ones, until
// ctx ends, send fails, the subscriber falls too far behind (TooSlowError)
// or the hub stops (ShutdownError). requested empty means every classroom of
// the teacher, including ones assigned later; a requested classroom not
// assigned to the teacher is ErrNotAssigned.
func (h *Hub) Subscribe(ctx context.Context, teacherID string, requested []string, afterID uint64, minSeverity alert.Severity, out Subscriber) error {
	assigned, err := h.repo.TeacherClassrooms(ctx, teacherID)
	if err != nil {
		return err
	}
	if err := checkAssigned(teacherID, requested, assigned); err != nil {
		return err
	}
	s := &subscription{teacher: teacherID, minSeverity: minSeverity, ch: make(chan *alert.Alert, h.buffer), cut: make(chan struct{})}
	if len(requested) > 0 {
		s.requested = make(map[string]bool, len(requested))
		for _, c := range requested {
			s.requested[c] = true
		}
	}
	// Live delivery may lag the table; the stored part of the stream reaches
	// at least to what is stored now, and live delivery skips up to there.
	stored, err := h.repo.LastAlertID(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if h.closed || !h.ready {
		h.mu.Unlock()
		return alert.ErrDashboardClosed
	}
	ts := h.teachers[teacherID]
	fresh := ts == nil
	if fresh {
		ts = &teacherSubs{id: teacherID, subs: map[*subscription]struct{}{}}
		h.teachers[teacherID] = ts
		h.setClassroomsLocked(ts, assigned)
	}
	ts.subs[s] = struct{}{}
	s.startID = max(h.lastID, stored)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if cur := h.teachers[teacherID]; cur != nil {
			if _, ok := cur.subs[s]; ok {
				h.removeLocked(cur, s)
			}
		}
		h.mu.Unlock()
	}()
	if fresh {
		// An assignment changed between the read above and the registration
		// found no subscription to update; read again now that there is one.
		if err := h.TeacherChanged(ctx, teacherID); err != nil {
			return err
		}
	}

	if err := out.Registered(); err != nil {
		return err
	}
	send := out.Send
	last := afterID
	// Stored alerts up to where live delivery starts, a page at a time.
	f := alert.Filter{MinSeverity: minSeverity, AfterID: afterID, UpToID: s.startID, Limit: readBatch}
	if afterID == 0 {
		f.States = []alert.State{alert.StateOpen, alert.StateAcknowledged}
	}
	f.Classrooms = h.classroomsOf(ts, s)
	for len(f.Classrooms) > 0 && f.AfterID < s.startID {
		page, err := h.repo.ListAlerts(ctx, f, true)
		if err != nil {
			return err
		}
		for i := range page {
			if err := send(&page[i]); err != nil {
				return err
			}
			last = page[i].ID
		}
		if len(page) < f.Limit {
			break
		}
		f.AfterID = page[len(page)-1].ID
	}
	last = max(last, s.startID)
	if err := out.Heartbeat(); err != nil {
		return err
	}
	quiet := time.NewTimer(HeartbeatInterval)
	defer quiet.Stop()

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-quiet.C:
			if err := out.Heartbeat(); err != nil {
				return err
			}
			quiet.Reset(HeartbeatInterval)
		case <-s.cut:
			// Deliver what is already queued before saying where to resume.
			for {
				select {
				case a := <-s.ch:
					if err := send(a); err != nil {
						return err
					}
					last = a.ID
					continue
				default:
				}
				break
			}
			if se, ok := s.cutErr.(*ShutdownError); ok {
				se.AfterID = last
				return se
			}
			return &TooSlowError{AfterID: last, Buffer: h.buffer}
		case a := <-s.ch:
			if a.ID <= last {
				continue
			}
			if err := send(a); err != nil {
				return err
			}
			last = a.ID
			quiet.Reset(HeartbeatInterval)
		}
	}
}

// Subscriber is where a subscription's stream goes.
type Subscriber struct {
	// Registered is called once the subscription receives live alerts,
	// before the stored ones are sent (the gRPC port sends the stream's
	// headers then).
	Registered func() error
	// Send sends one alert.
	Send func(*alert.Alert) error
	// Heartbeat says the subscription is live: once the stored alerts are
	// sent, then after every HeartbeatInterval of silence.
	Heartbeat func() error
}

// classroomsOf is the subscription's classrooms now.
func (h *Hub) classroomsOf(ts *teacherSubs, s *subscription) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for c := range ts.classrooms {
		if s.requested == nil || s.requested[c] {
			out = append(out, c)
		}
	}
	return out
}

// Subscribers is how many subscriptions are live on this replica.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ts := range h.teachers {
		n += len(ts.subs)
	}
	return n
}

func checkAssigned(teacherID string, requested []string, assigned []alert.Assignment) error {
	for _, c := range requested {
		found := false
		for _, a := range assigned {
			if a.ClassroomID == c {
				found = true
				break
			}
		}
		if !found {
			return alert.NotAssigned(teacherID, c)
		}
	}
	return nil
}
