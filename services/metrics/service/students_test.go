package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// TestListClassroomStudents lists a classroom's recently active students from
// the stored events: only that classroom's, only within active_within, paged
// by student id, with last event time, count and the item they are on.
func TestListClassroomStudents(t *testing.T) {
	e := newEnv(t, metricstest.Options{Quiet: true})
	now := time.Now().UTC().Truncate(time.Millisecond)
	finish := event("f-1", "room-a", "s-02", metricsv1.EventKind_EVENT_KIND_PAGE_VIEW, now.Add(-2*time.Minute))
	finish.ItemId, finish.Attrs = "item-9", map[string]string{"action": "finish"}
	req := &metricsv1.RecordMetricsRequest{Events: []*metricsv1.UsabilityEvent{
		attempt("a-1", "room-a", "s-01", "item-1", false, now.Add(-5*time.Minute)),
		attempt("a-2", "room-a", "s-01", "item-2", true, now.Add(-3*time.Minute)),
		attempt("a-3", "room-a", "s-02", "item-9", true, now.Add(-4*time.Minute)),
		finish,
		// Out of the default 30-minute window.
		attempt("a-4", "room-a", "s-03", "item-1", true, now.Add(-50*time.Minute)),
		// Another classroom.
		attempt("b-1", "room-b", "s-04", "item-1", true, now.Add(-time.Minute)),
	}}
	for i := range 7 {
		req.Events = append(req.Events, attempt(fmt.Sprintf("p-%d", i), "room-p", fmt.Sprintf("p-%02d", i), "item-1", true, now.Add(-time.Minute)))
	}
	if resp, err := e.cli.RecordMetrics(e.ctx, req); err != nil || resp.GetAccepted() != int32(len(req.Events)) {
		t.Fatalf("record: %v %v", resp, err)
	}

	resp, err := e.cli.ListClassroomStudents(e.ctx, &metricsv1.ListClassroomStudentsRequest{ClassroomId: "room-a"})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetStudents()
	if len(got) != 2 || resp.GetNextPageToken() != "" {
		t.Fatalf("room-a students = %v (next %q), want s-01 and s-02 only", got, resp.GetNextPageToken())
	}
	if s := got[0]; s.GetStudentId() != "s-01" || s.GetEvents() != 2 || !s.GetLastEventAt().AsTime().Equal(now.Add(-3*time.Minute)) || s.GetCurrentItemId() != "item-2" {
		t.Errorf("s-01 = %v, want 2 events, last at %v, on item-2", s, now.Add(-3*time.Minute))
	}
	if s := got[1]; s.GetStudentId() != "s-02" || s.GetEvents() != 2 || s.GetCurrentItemId() != "" {
		t.Errorf("s-02 = %v, want 2 events and no current item (item-9 finished)", s)
	}
	resp, err = e.cli.ListClassroomStudents(e.ctx, &metricsv1.ListClassroomStudentsRequest{ClassroomId: "room-a", ActiveWithin: durationpb.New(time.Hour)})
	if err != nil || len(resp.GetStudents()) != 3 || resp.GetStudents()[2].GetStudentId() != "s-03" {
		t.Fatalf("room-a within an hour = %v, %v; want s-01, s-02, s-03", resp.GetStudents(), err)
	}

	// Paging: 7 students in pages of 3, each once, in order.
	var seen []string
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		resp, err := e.cli.ListClassroomStudents(e.ctx, &metricsv1.ListClassroomStudentsRequest{ClassroomId: "room-p", PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.GetStudents() {
			seen = append(seen, s.GetStudentId())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if strings.Join(seen, ",") != "p-00,p-01,p-02,p-03,p-04,p-05,p-06" {
		t.Errorf("paged students = %v", seen)
	}

	for _, tc := range []struct {
		field string
		req   *metricsv1.ListClassroomStudentsRequest
	}{
		{"classroom_id", &metricsv1.ListClassroomStudentsRequest{}},
		{"active_within", &metricsv1.ListClassroomStudentsRequest{ClassroomId: "room-a", ActiveWithin: durationpb.New(-time.Minute)}},
		{"active_within", &metricsv1.ListClassroomStudentsRequest{ClassroomId: "room-a", ActiveWithin: durationpb.New(48 * time.Hour)}},
		{"page_size", &metricsv1.ListClassroomStudentsRequest{ClassroomId: "room-a", PageSize: 1001}},
		{"page_token", &metricsv1.ListClassroomStudentsRequest{ClassroomId: "room-a", PageToken: "!!"}},
	} {
		_, err := e.cli.ListClassroomStudents(e.ctx, tc.req)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.field) {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT naming %s", tc.field, err, tc.field)
		}
	}
}
