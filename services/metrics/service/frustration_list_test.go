package service_test

import (
	"fmt"
	"testing"
	"time"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// lowRatings submits one rating of 1 per student (each its own low_rating
// episode and alert key, so each gives one frustration event).
func (e *detectionEnv) lowRatings(t *testing.T, cli metricsv1.MetricsServiceClient, prefix string, n int) {
	t.Helper()
	for i := range n {
		classroom := "class-a"
		if i%3 == 0 {
			classroom = "class-b"
		}
		if _, err := cli.SubmitRating(e.ctx, &metricsv1.SubmitRatingRequest{RatingId: fmt.Sprintf("%s-r%d", prefix, i),
			StudentId: fmt.Sprintf("%s-s%02d", prefix, i), ClassroomId: classroom, AppId: "fractions-app", ItemId: "fractions-7", Rating: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

// listPages pages through ListFrustrationEvents with page_size and
// next_page_token, and returns every event and the number of pages.
func listPages(t *testing.T, e *detectionEnv, cli metricsv1.MetricsServiceClient, req *metricsv1.ListFrustrationEventsRequest) ([]*metricsv1.FrustrationEvent, int) {
	t.Helper()
	var all []*metricsv1.FrustrationEvent
	pages := 0
	for {
		resp, err := cli.ListFrustrationEvents(e.ctx, req)
		if err != nil {
			t.Fatalf("ListFrustrationEvents (page %d): %v", pages+1, err)
		}
		pages++
		if len(resp.GetEvents()) > int(req.GetPageSize()) {
			t.Fatalf("page %d has %d events, more than page_size %d", pages, len(resp.GetEvents()), req.GetPageSize())
		}
		all = append(all, resp.GetEvents()...)
		if resp.GetNextPageToken() == "" {
			return all, pages
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func eventIDs(evs []*metricsv1.FrustrationEvent) []uint64 {
	ids := make([]uint64, len(evs))
	for i, ev := range evs {
		ids[i] = ev.GetEventId()
	}
	return ids
}

// Paging through ListFrustrationEvents with page_size and next_page_token
// gives every event exactly once, in id order (the order the watch gives
// them), also with a filter, and with a page size that divides the total.
func TestListFrustrationEventsPagesEveryEventOnceInOrder(t *testing.T) {
	e := newDetectionEnv(t, 1)
	e.waitOwned(t, 8)
	const n = 24 // 8 in class-b, 16 in class-a
	e.lowRatings(t, e.cli, "p", n)
	watched := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{}, n, 20*time.Second)
	if len(watched) != n {
		t.Fatalf("the detector wrote %d frustration events, want %d", len(watched), n)
	}
	want := eventIDs(watched)

	for _, size := range []int32{1, 5, 8, n, 100} {
		t.Run(fmt.Sprintf("page_size=%d", size), func(t *testing.T) {
			got, pages := listPages(t, e, e.cli, &metricsv1.ListFrustrationEventsRequest{PageSize: size})
			if fmt.Sprint(eventIDs(got)) != fmt.Sprint(want) {
				t.Fatalf("paged ids %v, want each of %v once in order", eventIDs(got), want)
			}
			// Every page but the last is full, and a full last page costs
			// at most one empty page.
			if full := (n + int(size) - 1) / int(size); pages < full || pages > full+1 {
				t.Fatalf("%d pages of %d for %d events", pages, size, n)
			}
		})
	}

	var wantB []uint64
	for _, ev := range watched {
		if ev.GetClassroomId() == "class-b" {
			wantB = append(wantB, ev.GetEventId())
		}
	}
	got, _ := listPages(t, e, e.cli, &metricsv1.ListFrustrationEventsRequest{ClassroomIds: []string{"class-b"}, PageSize: 3})
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint(wantB) {
		t.Fatalf("class-b paged %v, want %v", eventIDs(got), wantB)
	}
	for _, ev := range got {
		if ev.GetClassroomId() != "class-b" {
			t.Fatalf("the class-b filter let through %v", ev)
		}
	}
	// after_id starts the paging after a known event.
	got, _ = listPages(t, e, e.cli, &metricsv1.ListFrustrationEventsRequest{AfterId: want[9], PageSize: 4})
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint(want[10:]) {
		t.Fatalf("after %d paged %v, want %v", want[9], eventIDs(got), want[10:])
	}
}

// FRUSTRATION_DETECTION_ENABLED=false turns the detector off, but the
// history stays readable: a replica without detection lists (and pages) and
// watches the events written before, and new events give no new findings.
func TestDetectionDisabledKeepsHistoryReadable(t *testing.T) {
	e := newDetectionEnv(t, 1)
	e.waitOwned(t, 8)
	const n = 6
	e.lowRatings(t, e.cli, "before", n)
	written := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{}, n, 20*time.Second)
	if len(written) != n {
		t.Fatalf("the detector wrote %d frustration events, want %d", len(written), n)
	}
	// The detecting replica goes; one with the detector off takes its place
	// on the same database.
	e.reps[0].Stop()
	off := metricstest.Start(t, e.db, metricstest.Options{Quiet: true, Keys: e.coord.Keys}) // Detection nil: FRUSTRATION_DETECTION_ENABLED=false
	cli := off.Client()

	got, _ := listPages(t, e, cli, &metricsv1.ListFrustrationEventsRequest{PageSize: 4})
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint(eventIDs(written)) {
		t.Fatalf("with detection off the list gives %v, want the history %v", eventIDs(got), eventIDs(written))
	}
	// New low ratings and a rage click are stored but judged by no one.
	e.lowRatings(t, cli, "after", n)
	now := time.Now().Add(-time.Second)
	if resp, err := cli.RecordMetrics(e.ctx, &metricsv1.RecordMetricsRequest{Events: []*metricsv1.UsabilityEvent{
		clickAt("off-c1", "class-a", "off-s", now, 100), clickAt("off-c2", "class-a", "off-s", now.Add(300*time.Millisecond), 101),
		clickAt("off-c3", "class-a", "off-s", now.Add(600*time.Millisecond), 102)}}); err != nil || len(resp.GetRejected()) > 0 {
		t.Fatalf("record with detection off: %v %v", resp, err)
	}
	// The watch still serves the history, and nothing more arrives.
	e.cli = cli
	watched := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{}, n+1, 3*time.Second)
	if fmt.Sprint(eventIDs(watched)) != fmt.Sprint(eventIDs(written)) {
		t.Fatalf("with detection off the watch gives %v, want only the history %v", eventIDs(watched), eventIDs(written))
	}
	if got, _ := listPages(t, e, cli, &metricsv1.ListFrustrationEventsRequest{PageSize: 100}); len(got) != n {
		t.Fatalf("with detection off %d frustration events exist, want the %d written before", len(got), n)
	}
}
