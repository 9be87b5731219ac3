package detect_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// simulatedClass is 30 students per classroom doing all archetypes' things,
// sorted by time.
func simulatedClasses(classrooms int) []ev {
	var all []ev
	for c := range classrooms {
		for i := range 10 {
			for _, script := range [][]ev{
				slowStudent(uint64(c*100+i), fmt.Sprintf("slow-%d", i)),
				fastStudent(uint64(c*100+i), fmt.Sprintf("fast-%d", i)),
				carefulStudent(uint64(c*100+i), fmt.Sprintf("careful-%d", i)),
			} {
				for _, e := range script {
					e.ClassroomID = fmt.Sprintf("class-%d", c)
					all = append(all, e)
				}
			}
		}
	}
	sortByTime(all)
	return all
}

// BenchmarkEngineObserve measures the detector alone: one event judged per
// op, arriving in real time.
func BenchmarkEngineObserve(b *testing.B) {
	events := simulatedClasses(4)
	en := newEngine(detect.DefaultConfig())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := events[i%len(events)]
		// Later laps run later, so that every lap is in order.
		e.OccurredAt = e.OccurredAt.Add(time.Duration(i/len(events)) * 3 * time.Hour)
		en.Observe(e, e.OccurredAt)
		if i%64 == 0 {
			en.Tick(e.OccurredAt)
		}
	}
}

// lessonEvents is the first 10 minutes of a simulated lesson of 10
// classrooms of 30 students (300 students, all of them active).
func lessonEvents() []ev {
	lessonSeconds = 660
	defer func() { lessonSeconds = 2400 }()
	events := simulatedClasses(10)
	var cut int
	for cut < len(events) && events[cut].OccurredAt.Before(at(600)) {
		cut++
	}
	return events[:cut]
}

// statePerStudent replays events into a new engine and returns the heap the
// engine's state takes per active student, and the number of students.
func statePerStudent(events []ev) (perStudent float64, students int) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	en := newEngine(detect.DefaultConfig())
	for _, e := range events {
		en.Observe(e, e.OccurredAt)
	}
	en.Tick(at(600))
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(en)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(en.Students()), en.Students()
}

// TestStateMemoryPerStudent checks the detector's memory per active student
// (the target is at most 4 KB) after 10 minutes of a simulated lesson.
func TestStateMemoryPerStudent(t *testing.T) {
	events := lessonEvents()
	perStudent, students := statePerStudent(events)
	t.Logf("%d students, %d events: %.0f bytes of detector state per student", students, len(events), perStudent)
	if perStudent > 4096 {
		t.Errorf("state per active student %.0f B, target ≤ 4 KB", perStudent)
	}
	runtime.KeepAlive(events)
}

// BenchmarkStateMemoryPerStudent reports, for `make bench`, the detector's
// state per active student after 10 minutes of a simulated lesson
// (bytes/student, the largest of the ops; the target is at most
// 4 KB). One op replays the lesson into a new engine; ns/op is that replay.
func BenchmarkStateMemoryPerStudent(b *testing.B) {
	events := lessonEvents()
	var worst float64
	var students int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		perStudent, n := statePerStudent(events)
		worst, students = max(worst, perStudent), n
	}
	b.ReportMetric(worst, "bytes/student")
	b.ReportMetric(float64(students), "students")
	b.ReportMetric(float64(len(events)), "events")
	runtime.KeepAlive(events)
}
