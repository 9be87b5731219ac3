package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// logSource is an in-memory commit log: events in position order, returned
// below a horizon the test sets. It records every query it is asked.
type logSource struct {
	mu      sync.Mutex
	log     []detect.Committed
	horizon uint64
	queries []detect.SourceQuery
}

func (s *logSource) Horizon(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.horizon, nil
}

func (s *logSource) Read(_ context.Context, q detect.SourceQuery) (detect.SourceBatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
	var b detect.SourceBatch
	for _, c := range s.log {
		if q.After.Before(c.Pos) && c.Pos.Xid < q.Horizon && len(b.Events) < q.Limit {
			b.Events = append(b.Events, c)
		}
	}
	b.Full = len(b.Events) >= q.Limit
	return b, nil
}

func (s *logSource) reads() []detect.SourceQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]detect.SourceQuery(nil), s.queries...)
}

// nullStore claims every partition from the start and stores nothing.
type nullStore struct{}

func (nullStore) Claim(context.Context, detect.PartitionRef) (detect.Checkpoint, error) {
	return detect.Checkpoint{}, nil
}
func (nullStore) Write(context.Context, []detect.PartitionFindings) ([]detect.FrustrationEvent, []int, error) {
	return nil, nil, nil
}
func (nullStore) SaveCheckpoint(context.Context, detect.PartitionRef, detect.Checkpoint) error {
	return nil
}
func (nullStore) Reported(context.Context, detect.PartitionRef, time.Time) ([]detect.Detection, error) {
	return nil, nil
}

// classroomIn returns a classroom id of partition n of 2.
func classroomIn(t *testing.T, n int) string {
	for i := range 1000 {
		if id := fmt.Sprintf("class-%d", i); detect.PartitionOf(id, 2) == n {
			return id
		}
	}
	t.Fatalf("no classroom in partition %d", n)
	return ""
}

// judged is the detector's count of judged events.
func judged(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gaia_detector_events_judged_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no gaia_detector_events_judged_total")
	return 0
}

func committed(xid uint64, ord int32, classroom string) detect.Committed {
	return detect.Committed{Pos: detect.Position{Xid: xid, Ord: ord}, Event: detect.Event{ClassroomID: classroom,
		StudentID: "s", AppID: "a", ItemID: "i", Kind: detect.KindClick, OccurredAt: time.Unix(1_700_000_000+int64(xid), 0)}}
}

// A batch cut at the read limit starts the next read while it is judged;
// the next round uses that read, so every event is judged exactly once and
// nothing is read twice.
func TestDetectorReadsAheadWhileJudging(t *testing.T) {
	c0 := classroomIn(t, 0)
	src := &logSource{horizon: 100}
	for x := uint64(10); x < 15; x++ {
		src.log = append(src.log, committed(x, 0, c0))
	}
	reg := prometheus.NewRegistry()
	d := NewDetector(DetectorConfig{Partitions: 2, ReadLimit: 2}, src, nullStore{}, reg, zap.NewNop())
	ctx := context.Background()
	d.Gain(0, 1)
	d.Gain(1, 1)
	d.applyChanges(ctx)
	for range 4 {
		d.applyChanges(ctx)
		if err := d.round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	d.dropReadAhead()
	if got := judged(t, reg); got != 5 {
		t.Fatalf("judged %v events, want 5", got)
	}
	seen := map[detect.Position]int{}
	for _, q := range src.reads() {
		seen[q.After]++
	}
	for after, n := range seen {
		if n > 1 {
			t.Errorf("read from %+v %d times: a read ahead was not used", after, n)
		}
	}
	if seen[detect.Position{Xid: 11}] != 1 || seen[detect.Position{Xid: 13}] != 1 {
		t.Errorf("reads %+v, want one after each full batch", src.reads())
	}
}

// A read started ahead is for the positions as they were; a partition
// gained meanwhile may start further back, so the round reads again from
// there and judges that partition's earlier events.
func TestDetectorDropsReadAheadWhenOwnershipChanges(t *testing.T) {
	c0, c1 := classroomIn(t, 0), classroomIn(t, 1)
	src := &logSource{horizon: 100}
	src.log = []detect.Committed{committed(10, 0, c1), committed(11, 0, c0), committed(12, 0, c0), committed(13, 0, c1)}
	reg := prometheus.NewRegistry()
	d := NewDetector(DetectorConfig{Partitions: 2, ReadLimit: 2}, src, nullStore{}, reg, zap.NewNop())
	ctx := context.Background()
	d.Gain(0, 1)
	d.applyChanges(ctx)
	if err := d.round(ctx); err != nil { // reads 10 and 11 (full), judges 11, reads ahead after 11
		t.Fatal(err)
	}
	if d.ahead == nil {
		t.Fatal("no read ahead after a full batch")
	}
	d.Gain(1, 1) // its checkpoint is the start: it needs 10 and 13
	for range 3 {
		d.applyChanges(ctx)
		if err := d.round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	d.dropReadAhead()
	// Partition 0: 11, 12. Partition 1: 10, 13.
	if got := judged(t, reg); got != 4 {
		t.Fatalf("judged %v events, want 4 (reads %+v)", got, src.reads())
	}
	if q := src.reads()[2]; q.After != (detect.Position{}) {
		t.Fatalf("third read after %+v, want from the start for the gained partition", q.After)
	}
}
