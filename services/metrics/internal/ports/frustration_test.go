package ports

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/internal/app"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// A teacher who names no classroom would read every classroom's
// frustration events: refused, naming classroom_ids.
func TestTeacherMustNameClassrooms(t *testing.T) {
	ctx := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleTeacher, TeacherID: "t1"})
	s := &MetricsServer{}
	_, err := s.ListFrustrationEvents(ctx, &metricsv1.ListFrustrationEventsRequest{})
	var de *domainerr.Error
	if !errors.As(err, &de) || de.Kind != domainerr.InvalidArgument || de.Field != "classroom_ids" {
		t.Fatalf("teacher listing all classrooms: %v", err)
	}
	if _, err := classroomFilter(ctx, []string{"c1"}); err != nil {
		t.Fatalf("teacher naming a classroom: %v", err)
	}
	admin := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleAdmin})
	if _, err := classroomFilter(admin, nil); err != nil {
		t.Fatalf("an admin may list all: %v", err)
	}
	if _, err := classroomFilter(context.Background(), []string{"ok", ""}); err == nil {
		t.Fatal("an empty classroom id must be refused")
	}
}

// manyEvents is an event store holding n events, each with a reason of
// reasonBytes, and answering pages in id order.
type manyEvents struct {
	n, reasonBytes int
}

func (m manyEvents) List(_ context.Context, f detect.ListFilter) ([]detect.FrustrationEvent, error) {
	var out []detect.FrustrationEvent
	for id := f.AfterID + 1; id <= uint64(m.n) && len(out) < f.Limit; id++ {
		out = append(out, detect.FrustrationEvent{ID: id, Detection: detect.Detection{ClassroomID: "c1", StudentID: "s1",
			Reasons: []string{strings.Repeat("r", m.reasonBytes)}}})
	}
	return out, nil
}

// A page of frustration events ends before the reply passes its byte
// budget, with a token for the rest, so that no event is lost to a reply
// the client cannot take (issue 10, finding 2).
func TestListFrustrationEventsEndsThePageAtTheReplyBudget(t *testing.T) {
	const budget = 64 << 10
	s := &MetricsServer{Frustration: app.NewFrustration(manyEvents{n: 50, reasonBytes: 10 << 10}, nil, nil), MaxReplyBytes: budget}
	admin := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleAdmin})
	req := &metricsv1.ListFrustrationEventsRequest{PageSize: 1000}
	var got []uint64
	for pages := 1; ; pages++ {
		resp, err := s.ListFrustrationEvents(admin, req)
		if err != nil {
			t.Fatal(err)
		}
		if size := proto.Size(resp); size > budget {
			t.Fatalf("page %d is %d bytes, over the %d-byte budget", pages, size, budget)
		}
		for _, ev := range resp.GetEvents() {
			got = append(got, ev.GetEventId())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		if pages > 50 {
			t.Fatal("paging does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if len(got) != 50 || got[0] != 1 || got[49] != 50 {
		t.Fatalf("paged %d events (%v…), want 1..50 once each", len(got), got[:min(len(got), 5)])
	}
}
