package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// DetectorConfig tunes the detector. Zero fields take the defaults noted.
type DetectorConfig struct {
	// Partitions is DETECTION_PARTITIONS (default 16); every replica must
	// use the same number.
	Partitions int
	// PollInterval is how often committed events are read (default 50 ms).
	PollInterval time.Duration
	// CheckpointInterval is how often each partition saves its checkpoint
	// (default 5 s). A takeover replays at most this much.
	CheckpointInterval time.Duration
	// ReadLimit bounds the events read in one round (default 50,000).
	ReadLimit int
	// Engine tunes each partition's engine (its Settings is the detector's).
	Engine detect.Options
	// Owner names this replica in the partitions table.
	Owner string
}

func (c *DetectorConfig) defaults() {
	if c.Partitions <= 0 {
		c.Partitions = 16
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 5 * time.Second
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 50000
	}
}

// Detector runs the partitions this replica owns: it reads committed events
// of their classrooms in commit order, judges them with one engine per
// partition, writes what the engines find (fenced by the partition's token),
// and saves checkpoints. Ownership comes from outside (Gain, Lose, Release);
// everything else happens on one goroutine, Run's.
type Detector struct {
	cfg    DetectorConfig
	source detect.Source
	store  detect.PartitionStore
	log    *zap.Logger
	now    func() time.Time
	met    *detectorMetrics

	mu      sync.Mutex
	changes []ownershipChange
	wake    chan struct{}

	// Run's own.
	owned        map[int]*partitionRun
	settings     map[string]*detect.Config
	settingsFrom uint64
	// ahead is the next read, started while the current batch is judged
	// when that batch was cut at the read limit (nil when none is running).
	ahead *readAhead
}

type ownershipChange struct {
	partition int
	token     uint64 // gain when non-zero
	release   bool   // checkpoint before letting go
	done      chan error
}

type partitionRun struct {
	ref        detect.PartitionRef
	engine     *detect.Engine
	pos        detect.Position
	ratingsXid uint64
	unwritten  []detect.Detection
	savedAt    time.Time
}

// NewDetector returns a detector owning nothing yet.
func NewDetector(cfg DetectorConfig, source detect.Source, store detect.PartitionStore, reg prometheus.Registerer, log *zap.Logger) *Detector {
	cfg.defaults()
	return &Detector{cfg: cfg, source: source, store: store, log: log, now: time.Now, met: newDetectorMetrics(reg),
		wake: make(chan struct{}, 1), owned: map[int]*partitionRun{}, settings: map[string]*detect.Config{}}
}

// Partitions is the partition count.
func (d *Detector) Partitions() int { return d.cfg.Partitions }

// Gain hands the detector a partition whose lock it now holds with token.
func (d *Detector) Gain(partition int, token uint64) {
	d.change(ownershipChange{partition: partition, token: token})
}

// Lose stops a partition at once (its lock is gone): nothing more is written
// for it.
func (d *Detector) Lose(partition int) { d.change(ownershipChange{partition: partition}) }

// Release saves a partition's checkpoint and stops it, so that the lock can
// be handed on with nothing to replay. It returns when done.
func (d *Detector) Release(ctx context.Context, partition int) error {
	done := make(chan error, 1)
	d.change(ownershipChange{partition: partition, release: true, done: done})
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Detector) change(c ownershipChange) {
	d.mu.Lock()
	d.changes = append(d.changes, c)
	d.mu.Unlock()
	d.poke()
}

// Wake makes the detector read now (the group committer calls it after each
// local commit).
func (d *Detector) Wake() { d.poke() }

func (d *Detector) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run detects until ctx ends, then checkpoints every partition it owns.
func (d *Detector) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			d.shutdown()
			return
		case <-timer.C:
		case <-d.wake:
		}
		d.applyChanges(ctx)
		if err := d.round(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("detection round failed", zap.Error(err))
		}
		wait := d.cfg.PollInterval
		for _, p := range d.owned {
			if next := p.engine.NextDeadline(); !next.IsZero() {
				wait = min(wait, max(time.Until(next), time.Millisecond))
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

func (d *Detector) shutdown() {
	d.dropReadAhead()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.applyChanges(ctx)
	for n, p := range d.owned {
		if err := d.checkpoint(ctx, p); err != nil {
			d.log.Warn("final checkpoint failed", zap.Int("partition", n), zap.Error(err))
		}
	}
	d.owned = map[int]*partitionRun{}
	d.met.owned.Set(0)
}

func (d *Detector) applyChanges(ctx context.Context) {
	d.mu.Lock()
	changes := d.changes
	d.changes = nil
	d.mu.Unlock()
	for _, c := range changes {
		p := d.owned[c.partition]
		switch {
		case c.token != 0:
			if p != nil && p.ref.Token >= c.token {
				continue
			}
			if err := d.claim(ctx, c.partition, c.token); err != nil {
				d.log.Warn("claiming a detector partition failed", zap.Int("partition", c.partition), zap.Error(err))
			}
		case c.release:
			var err error
			if p != nil {
				err = d.checkpoint(ctx, p)
				delete(d.owned, c.partition)
			}
			c.done <- err
		default:
			if p != nil {
				d.log.Info("detector partition lost", zap.Int("partition", c.partition))
				delete(d.owned, c.partition)
			}
		}
	}
	d.met.owned.Set(float64(len(d.owned)))
}

// claim records this replica as the partition's owner in the store (which
// fences out the previous one), and rebuilds the partition from its
// checkpoint: the engine's state as of then, the findings stored since (so
// that a replay stays within their cooldown), and its positions.
func (d *Detector) claim(ctx context.Context, n int, token uint64) error {
	ref := detect.PartitionRef{Partitions: d.cfg.Partitions, Partition: n, Token: token, Owner: d.cfg.Owner}
	cp, err := d.store.Claim(ctx, ref)
	if err != nil {
		return err
	}
	opts := d.cfg.Engine
	opts.Settings = d.settingsFor
	en := detect.NewEngine(opts)
	if cp.State != nil {
		if err := en.Restore(cp.State); err != nil {
			d.log.Error("detector checkpoint unreadable; the partition starts afresh from its position", zap.Int("partition", n), zap.Error(err))
			en = detect.NewEngine(opts)
		}
	}
	since := cp.At.Add(-30 * time.Second)
	if cp.At.IsZero() {
		since = d.now().Add(-time.Hour)
	}
	reported, err := d.store.Reported(ctx, ref, since)
	if err != nil {
		return err
	}
	for _, r := range reported {
		en.RecordReported(r)
	}
	d.owned[n] = &partitionRun{ref: ref, engine: en, pos: cp.Events, ratingsXid: cp.RatingsXid, savedAt: d.now()}
	d.log.Info("detector partition claimed", zap.Int("partition", n), zap.Uint64("fencing_token", token),
		zap.Bool("from_checkpoint", cp.State != nil), zap.Int("stored_findings_loaded", len(reported)),
		zap.Uint64("event_xid", cp.Events.Xid), zap.Int32("event_ord", cp.Events.Ord), zap.Time("checkpointed_at", cp.At))
	return nil
}

func (d *Detector) settingsFor(classroomID string) *detect.Config {
	if c := d.settings[classroomID]; c != nil {
		return c
	}
	return detect.DefaultConfig()
}

// round reads what committed since the partitions' positions, judges it,
// runs the engines' timers and writes what they found.
func (d *Detector) round(ctx context.Context) error {
	if len(d.owned) == 0 {
		return nil
	}
	start := d.now()
	var after detect.Position
	var ratingsFrom uint64
	first := true
	for _, p := range d.owned {
		if first || p.pos.Before(after) {
			after = p.pos
		}
		if first || p.ratingsXid < ratingsFrom {
			ratingsFrom = p.ratingsXid
		}
		first = false
	}
	q := detect.SourceQuery{After: after, RatingsFrom: ratingsFrom, SettingsFrom: d.settingsFrom}
	horizon, read, batch, err := d.fetch(ctx, q)
	if err != nil {
		return err
	}
	if read {
		if len(batch.Events) > 0 {
			// Events are flowing: read on from where this batch ends while
			// it is judged and its findings written. judge moves every
			// owned partition to at least the batch's end and the ratings
			// and settings to at least horizon, so the next round asks for
			// exactly this unless ownership changes first.
			end := batchEnd(batch, horizon)
			next := detect.SourceQuery{After: after, RatingsFrom: max(ratingsFrom, horizon), SettingsFrom: horizon}
			if next.After.Before(end) {
				next.After = end
			}
			d.startReadAhead(ctx, next)
		}
		d.judge(batch, horizon)
	}
	now := d.now()
	for _, p := range d.owned {
		p.unwritten = append(p.unwritten, p.engine.Tick(now)...)
	}
	d.writeAll(ctx)
	// One checkpoint a round at most, the most overdue: a partition's state
	// can be megabytes, and saving them all in one round would stall
	// detection for every classroom at once.
	due := -1
	for n, p := range d.owned {
		if now.Sub(p.savedAt) >= d.cfg.CheckpointInterval && len(p.unwritten) == 0 &&
			(due < 0 || p.savedAt.Before(d.owned[due].savedAt)) {
			due = n
		}
	}
	if due >= 0 {
		if err := d.checkpoint(ctx, d.owned[due]); err != nil {
			d.fail(due, err)
		}
	}
	d.met.roundSeconds.Observe(d.now().Sub(start).Seconds())
	return nil
}

// judge feeds a batch to the engines. A settings change applies to what
// committed after it: the batch is cut at each change (by transaction id)
// and the change applied between the pieces. Within a piece each partition
// gets what is past its own position, sorted by occurred_at (stable, so
// that commit order breaks ties) to spare the engines needless reordering.
func (d *Detector) judge(b detect.SourceBatch, horizon uint64) {
	ev, rt := b.Events, b.Ratings
	for i := 0; i <= len(b.Settings); i++ {
		cut := uint64(1<<64 - 1)
		if i < len(b.Settings) {
			cut = b.Settings[i].Xid
		}
		n := 0
		for n < len(ev) && ev[n].Pos.Xid < cut {
			n++
		}
		m := 0
		for m < len(rt) && rt[m].Xid < cut {
			m++
		}
		d.judgePiece(ev[:n], rt[:m])
		ev, rt = ev[n:], rt[m:]
		if i < len(b.Settings) {
			s := b.Settings[i].Settings
			d.settings[s.ClassroomID] = s.Effective()
		}
	}
	d.settingsFrom = horizon
	end := batchEnd(b, horizon)
	for _, p := range d.owned {
		if p.pos.Before(end) {
			p.pos = end
		}
		p.ratingsXid = max(p.ratingsXid, horizon)
	}
	if b.Full {
		d.poke() // more is waiting
	}
}

// batchEnd is the position a batch read up to horizon has covered: its last
// event when it was cut at the read limit, else everything below horizon.
func batchEnd(b detect.SourceBatch, horizon uint64) detect.Position {
	if b.Full {
		return b.Events[len(b.Events)-1].Pos
	}
	return detect.Position{Xid: horizon, Ord: -1}
}

func (d *Detector) judgePiece(events []detect.Committed, ratings []detect.CommittedRating) {
	if len(events) == 0 && len(ratings) == 0 {
		return
	}
	// Each owned partition's share, as pointers into the batch: an event is
	// about 150 bytes, and sorting pointers moves far less.
	per := map[int][]*detect.Event{}
	for i := range events {
		c := &events[i]
		n := detect.PartitionOf(c.Event.ClassroomID, d.cfg.Partitions)
		if p := d.owned[n]; p != nil && p.pos.Before(c.Pos) {
			per[n] = append(per[n], &c.Event)
		}
	}
	for i := range ratings {
		r := &ratings[i]
		n := detect.PartitionOf(r.Event.ClassroomID, d.cfg.Partitions)
		if p := d.owned[n]; p != nil && r.Xid >= p.ratingsXid {
			per[n] = append(per[n], &r.Event)
		}
	}
	now := d.now()
	judged := 0
	byTime := func(a, b *detect.Event) int { return a.OccurredAt.Compare(b.OccurredAt) }
	for n, list := range per {
		p := d.owned[n]
		if !slices.IsSortedFunc(list, byTime) {
			slices.SortStableFunc(list, byTime)
		}
		for _, ev := range list {
			p.unwritten = append(p.unwritten, p.engine.Observe(*ev, now)...)
		}
		judged += len(list)
	}
	d.met.judged.Add(float64(judged))
}
