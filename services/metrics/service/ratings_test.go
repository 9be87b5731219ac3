package service_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// TestRatingsIdempotentAndSummarised: a rating id stores once (a retry with
// other content gets the stored rating back), bad ratings name their field,
// and the summary counts by classroom, app, item and window.
func TestRatingsIdempotentAndSummarised(t *testing.T) {
	e := newEnv(t, metricstest.Options{})
	now := time.Now()
	submit := func(id, classroom, app, item string, rating int32, at time.Time) *metricsv1.SubmitRatingResponse {
		t.Helper()
		resp, err := e.cli.SubmitRating(e.ctx, &metricsv1.SubmitRatingRequest{RatingId: id, StudentId: "s-1", ClassroomId: classroom,
			AppId: app, ItemId: item, Rating: rating, OccurredAt: timestamppb.New(at)})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	submit("r1", "room-1", "fractions", "q1", 1, now)
	submit("r2", "room-1", "fractions", "q1", 5, now.Add(-time.Hour))
	submit("r3", "room-1", "fractions", "q2", 4, now.Add(-2*time.Hour))
	submit("r4", "room-2", "fractions", "q1", 3, now)
	submit("r5", "room-1", "algebra", "q1", 2, now)
	submit("r6", "room-1", "fractions", "q1", 2, now.Add(-10*24*time.Hour)) // outside the default 7 days
	if dup := submit("r1", "room-1", "fractions", "q1", 3, now); !dup.Duplicate || dup.Rating.Rating != 1 {
		t.Fatalf("retry of r1: %+v, want duplicate with the stored rating 1", dup)
	}
	if fresh := submit("", "room-1", "fractions", "q9", 3, now); fresh.Rating.RatingId == "" || fresh.Duplicate {
		t.Fatalf("a rating without an id: %+v, want a server-chosen id", fresh)
	}

	for _, c := range []struct {
		name  string
		req   *metricsv1.GetRatingSummaryRequest
		count int64
		mean  float64
		dist  [5]int64
	}{
		{"classroom", &metricsv1.GetRatingSummaryRequest{ClassroomId: "room-1"}, 5, 3, [5]int64{1, 1, 1, 1, 1}},
		{"classroom and app", &metricsv1.GetRatingSummaryRequest{ClassroomId: "room-1", AppId: "fractions"}, 4, 3.25, [5]int64{1, 0, 1, 1, 1}},
		{"app and item", &metricsv1.GetRatingSummaryRequest{AppId: "fractions", ItemId: "q1"}, 3, 3, [5]int64{1, 0, 1, 0, 1}},
		{"window", &metricsv1.GetRatingSummaryRequest{ClassroomId: "room-1", AppId: "fractions",
			StartTime: timestamppb.New(now.Add(-90 * time.Minute)), EndTime: timestamppb.New(now.Add(time.Second))}, 3, 3, [5]int64{1, 0, 1, 0, 1}},
		{"eleven days", &metricsv1.GetRatingSummaryRequest{ClassroomId: "room-1", AppId: "fractions",
			StartTime: timestamppb.New(now.Add(-11 * 24 * time.Hour))}, 5, 3, [5]int64{1, 1, 1, 1, 1}},
	} {
		got, err := e.cli.GetRatingSummary(e.ctx, c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var dist [5]int64
		for i, b := range got.Distribution {
			if b.Rating != int32(i+1) {
				t.Fatalf("%s: bucket %d is rating %d", c.name, i, b.Rating)
			}
			dist[i] = b.Count
		}
		if got.Count != c.count || got.Mean != c.mean || dist != c.dist {
			t.Errorf("%s: count %d mean %v %v; want %d %v %v", c.name, got.Count, got.Mean, dist, c.count, c.mean, c.dist)
		}
	}

	for _, c := range []struct {
		req   *metricsv1.SubmitRatingRequest
		field string
	}{
		{&metricsv1.SubmitRatingRequest{StudentId: "s", ClassroomId: "c", AppId: "a", Rating: 0}, "rating"},
		{&metricsv1.SubmitRatingRequest{StudentId: "s", ClassroomId: "c", AppId: "a", Rating: 6}, "rating"},
		{&metricsv1.SubmitRatingRequest{ClassroomId: "c", AppId: "a", Rating: 3}, "student_id"},
		{&metricsv1.SubmitRatingRequest{StudentId: "s", ClassroomId: "c", AppId: "a", Rating: 3, Feedback: strings.Repeat("x", 3000)}, "feedback"},
		{&metricsv1.SubmitRatingRequest{StudentId: "s", ClassroomId: "c", AppId: "a", Rating: 3, OccurredAt: timestamppb.New(now.Add(time.Hour))}, "occurred_at"},
	} {
		_, err := e.cli.SubmitRating(e.ctx, c.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%v: got %v, want INVALID_ARGUMENT naming %s", c.req, err, c.field)
		}
	}
	if _, err := e.cli.GetRatingSummary(e.ctx, &metricsv1.GetRatingSummaryRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("summary without classroom or app: %v", err)
	}
}
