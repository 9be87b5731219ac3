package service_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// TestSnapshotsEqualRecomputationFromRawEvents posts a random mix of events
// (concurrently, with retries, late events for earlier minutes) and checks
// every snapshot against a SQL recomputation from the events table.
func TestSnapshotsEqualRecomputationFromRawEvents(t *testing.T) {
	e := newEnv(t, metricstest.Options{Quiet: true})
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
	kinds := []metricsv1.EventKind{metricsv1.EventKind_EVENT_KIND_ATTEMPT, metricsv1.EventKind_EVENT_KIND_ATTEMPT, metricsv1.EventKind_EVENT_KIND_ERROR,
		metricsv1.EventKind_EVENT_KIND_HESITATION, metricsv1.EventKind_EVENT_KIND_CLICK, metricsv1.EventKind_EVENT_KIND_PAGE_VIEW}
	var batches []*metricsv1.RecordMetricsRequest
	for b := range 60 {
		req := &metricsv1.RecordMetricsRequest{}
		for i := range 1 + rng.IntN(50) {
			k := kinds[rng.IntN(len(kinds))]
			// Later batches also carry events of earlier minutes (late events).
			at := base.Add(time.Duration(rng.IntN(b/4+1)) * time.Minute).Add(time.Duration(rng.IntN(60_000)) * time.Millisecond)
			ev := event(fmt.Sprintf("snap-%d-%d", b, i), fmt.Sprintf("room-%d", rng.IntN(3)), fmt.Sprintf("s-%d", rng.IntN(12)), k, at)
			ev.ItemId = fmt.Sprintf("item-%d", rng.IntN(8))
			switch k {
			case metricsv1.EventKind_EVENT_KIND_ATTEMPT:
				ev.Correct = proto.Bool(rng.IntN(3) == 0)
			case metricsv1.EventKind_EVENT_KIND_HESITATION:
				ev.Value = rng.Float64() * 30
			case metricsv1.EventKind_EVENT_KIND_CLICK:
				ev.X, ev.Y = proto.Int32(int32(rng.IntN(800))), proto.Int32(int32(rng.IntN(600)))
			}
			req.Events = append(req.Events, ev)
		}
		batches = append(batches, req)
	}
	var wg sync.WaitGroup
	for i, req := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1 + i%2 { // every other batch is retried: no double counting
				if _, err := e.cli.RecordMetrics(e.ctx, req); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()

	pool := e.pool(t)
	waitRollups(t, pool)
	type want struct {
		events, students, attempts, wrong, errs int64
		hes                                     float64
		items                                   []string
	}
	for room := range 3 {
		classroom := fmt.Sprintf("room-%d", room)
		rows, err := pool.Query(e.ctx, `
			SELECT date_bin('1 minute', occurred_at, 'epoch') AS m, count(*), count(DISTINCT student_id),
				count(*) FILTER (WHERE kind = 'attempt'), count(*) FILTER (WHERE kind = 'attempt' AND NOT correct),
				count(*) FILTER (WHERE kind = 'error'), coalesce(avg(value) FILTER (WHERE kind = 'hesitation'), 0)
			FROM metrics.usability_events WHERE classroom_id = $1 GROUP BY m ORDER BY m`, classroom)
		if err != nil {
			t.Fatal(err)
		}
		wants := map[int64]*want{}
		var minutes []int64
		for rows.Next() {
			var m time.Time
			w := &want{}
			if err := rows.Scan(&m, &w.events, &w.students, &w.attempts, &w.wrong, &w.errs, &w.hes); err != nil {
				t.Fatal(err)
			}
			wants[m.Unix()] = w
			minutes = append(minutes, m.Unix())
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		// Hardest items per minute, recomputed.
		irows, err := pool.Query(e.ctx, `
			SELECT date_bin('1 minute', occurred_at, 'epoch') AS m, item_id,
				count(*) FILTER (WHERE kind = 'attempt' AND NOT correct) + count(*) FILTER (WHERE kind = 'error') AS errs,
				count(*) AS n
			FROM metrics.usability_events WHERE classroom_id = $1 AND kind IN ('attempt', 'error') AND item_id <> ''
			GROUP BY m, item_id`, classroom)
		if err != nil {
			t.Fatal(err)
		}
		type item struct {
			id   string
			rate float64
			errs int64
		}
		itemsBy := map[int64][]item{}
		for irows.Next() {
			var m time.Time
			var it item
			var n int64
			if err := irows.Scan(&m, &it.id, &it.errs, &n); err != nil {
				t.Fatal(err)
			}
			it.rate = float64(it.errs) / float64(n)
			itemsBy[m.Unix()] = append(itemsBy[m.Unix()], it)
		}
		for m, its := range itemsBy {
			sort.Slice(its, func(a, b int) bool {
				if its[a].rate != its[b].rate {
					return its[a].rate > its[b].rate
				}
				if its[a].errs != its[b].errs {
					return its[a].errs > its[b].errs
				}
				return its[a].id < its[b].id
			})
			for i := 0; i < len(its) && i < 5; i++ {
				wants[m].items = append(wants[m].items, its[i].id)
			}
		}

		// Page through the snapshots three minutes at a time.
		var got []*metricsv1.ClassroomSnapshot
		token := ""
		for {
			resp, err := e.cli.ListClassroomSnapshots(e.ctx, &metricsv1.ListClassroomSnapshotsRequest{ClassroomId: classroom,
				StartTime: timestamppb.New(base.Add(-time.Hour)), EndTime: timestamppb.New(time.Now().Add(time.Hour)), PageSize: 3, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, resp.Snapshots...)
			if token = resp.NextPageToken; token == "" {
				break
			}
		}
		if len(got) != len(minutes) {
			t.Fatalf("%s: %d snapshots, want %d minutes", classroom, len(got), len(minutes))
		}
		for i, s := range got {
			w := wants[minutes[i]]
			errRate := 0.0
			if w.attempts+w.errs > 0 {
				errRate = float64(w.wrong+w.errs) / float64(w.attempts+w.errs)
			}
			if s.Minute.AsTime().Unix() != minutes[i] || s.Events != w.events || s.ActiveStudents != w.students ||
				math.Abs(s.ErrorRate-errRate) > 1e-9 || math.Abs(s.MeanHesitation.AsDuration().Seconds()-w.hes) > 1e-6 || s.FrustratedStudents != 0 {
				t.Errorf("%s minute %s: got events %d, students %d, error rate %v, hesitation %v; recomputed %+v (error rate %v)",
					classroom, s.Minute.AsTime(), s.Events, s.ActiveStudents, s.ErrorRate, s.MeanHesitation.AsDuration(), *w, errRate)
			}
			var items []string
			for _, it := range s.HardestItems {
				items = append(items, it.ItemId)
			}
			if fmt.Sprint(items) != fmt.Sprint(w.items) {
				t.Errorf("%s minute %s: hardest items %v, recomputed %v", classroom, s.Minute.AsTime(), items, w.items)
			}
		}
		// GetClassroomSnapshot of a minute agrees with the list.
		one, err := e.cli.GetClassroomSnapshot(e.ctx, &metricsv1.GetClassroomSnapshotRequest{ClassroomId: classroom, Minute: timestamppb.New(got[0].Minute.AsTime().Add(30 * time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(one.Snapshot, got[0]) {
			t.Errorf("GetClassroomSnapshot %v != listed %v", one.Snapshot, got[0])
		}
	}
	_, err := e.cli.GetClassroomSnapshot(e.ctx, &metricsv1.GetClassroomSnapshotRequest{ClassroomId: "room-none"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("a classroom without events: %v, want NOT_FOUND", err)
	}
}
