//go:build unix

package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// BenchmarkDetectorJudge is the detector's work between a read and a write,
// without I/O: a batch of 50,000 committed events (300 classrooms of 20
// students in 16 partitions; keystrokes, clicks, attempts and page views)
// handed to judge, which groups them by partition, orders them by event
// time and runs the engines. Commit order interleaves 8 senders, so a batch
// is in event-time order per student but not overall, as in the ingest
// benchmark. It reports the process's CPU time per event judged (getrusage:
// the engines, sorting, GC), which a loaded machine distorts far less than
// wall time.
func BenchmarkDetectorJudge(b *testing.B) {
	const classrooms, students, batch, senders = 300, 20, 50000, 8
	d := NewDetector(DetectorConfig{Partitions: 16}, nil, nullStore{}, nil, zap.NewNop())
	ctx := context.Background()
	for n := range 16 {
		d.Gain(n, 1)
	}
	d.applyChanges(ctx)
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []detect.Kind{detect.KindKeystroke, detect.KindKeystroke, detect.KindClick, detect.KindAttempt, detect.KindPageView}
	keys := []string{"a", "b", "backspace", "c"}
	start := time.Now().Add(-time.Hour)
	// Each sender sends the events of its own students in time order;
	// commits interleave the senders' batches of 100.
	clocks := make([]time.Time, classrooms*students)
	for i := range clocks {
		clocks[i] = start
	}
	var xid uint64 = 1000
	next := func() detect.SourceBatch {
		var out detect.SourceBatch
		for len(out.Events) < batch {
			sender := rng.IntN(senders)
			xid++
			for ord := range int32(100) {
				st := sender + senders*rng.IntN(classrooms*students/senders)
				clocks[st] = clocks[st].Add(time.Duration(200+rng.IntN(3000)) * time.Millisecond)
				k := kinds[rng.IntN(len(kinds))]
				ev := detect.Event{ClassroomID: fmt.Sprintf("room-%d", st/students), StudentID: fmt.Sprintf("s-%d", st),
					AppID: "fractions", ItemID: fmt.Sprintf("item-%d", rng.IntN(5)), Kind: k, OccurredAt: clocks[st]}
				switch k {
				case detect.KindKeystroke:
					ev.Key = keys[rng.IntN(len(keys))]
				case detect.KindClick:
					ev.X, ev.Y, ev.HasXY = int32(rng.IntN(800)), int32(rng.IntN(600)), true
				case detect.KindAttempt:
					ev.Correct, ev.HasCorrect = rng.IntN(3) > 0, true
				case detect.KindPageView:
					ev.Action = "start"
				}
				out.Events = append(out.Events, detect.Committed{Pos: detect.Position{Xid: xid, Ord: ord}, Event: ev})
			}
		}
		return out
	}
	d.judge(next(), xid+1) // warm: every student known
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		bt := next()
		runtime.GC()
		before := cpuTime(b)
		b.StartTimer()
		d.judge(bt, xid+1)
		runtime.GC() // the garbage this batch made is part of its cost
		b.StopTimer()
		cpu += cpuTime(b) - before
		for _, p := range d.owned {
			p.unwritten = p.unwritten[:0]
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*batch), "cpu-ns/event")
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
