package dashboardtest

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

// Feed is a stand-in metrics service serving WatchFrustrationEvents from the
// events a test appends (ids 1, 2, 3…), with the real one's contract: events
// after after_id, in id order, then new ones as they are appended.
type Feed struct {
	metricsv1.UnimplementedMetricsServiceServer
	t    testing.TB
	Addr string

	mu     sync.Mutex
	events []*metricsv1.FrustrationEvent
	// students are the active students ListClassroomStudents returns, by
	// classroom.
	students map[string][]*metricsv1.ClassroomStudent
	changed  chan struct{}
	watches  int
	stop     context.CancelFunc
	served   chan error
}

// StartFeed serves a feed on a loopback port until the test ends.
func StartFeed(t testing.TB) *Feed {
	t.Helper()
	f := &Feed{t: t, changed: make(chan struct{})}
	f.serve()
	t.Cleanup(f.Stop)
	return f
}

func (f *Feed) serve() {
	f.t.Helper()
	addr := f.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// The port of a stopped feed may take a moment to be free again.
	lis, err := grpctest.Rebind(func() (net.Listener, error) { return net.Listen("tcp", addr) })
	if err != nil {
		f.t.Fatalf("feed: listen: %v", err)
	}
	f.Addr = lis.Addr().String()
	srv := grpcserver.New(grpcserver.Options{Name: "feed", Logger: zaptest.NewLogger(f.t).Named("feed"), ShutdownTimeout: time.Second})
	metricsv1.RegisterMetricsServiceServer(srv.GRPC(), f)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	f.mu.Lock()
	f.stop, f.served = stop, served
	f.mu.Unlock()
}

// Stop stops serving (a metrics service going down); Restart serves again on
// the same address with the same events.
func (f *Feed) Stop() {
	f.mu.Lock()
	stop, served := f.stop, f.served
	f.stop = nil
	f.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	if err := <-served; err != nil {
		f.t.Errorf("feed stopped with an error: %v", err)
	}
}

// Restart serves again after Stop.
func (f *Feed) Restart() { f.serve() }

// Append adds events, giving each the next id (and a triggered_at if unset),
// and returns their ids.
func (f *Feed) Append(events ...*metricsv1.FrustrationEvent) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]uint64, len(events))
	for i, e := range events {
		e = proto.Clone(e).(*metricsv1.FrustrationEvent)
		e.EventId = uint64(len(f.events) + 1)
		if e.TriggeredAt == nil {
			e.TriggeredAt = timestamppb.Now()
		}
		e.DetectedAt = timestamppb.Now()
		f.events = append(f.events, e)
		ids[i] = e.EventId
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return ids
}

// SetStudents sets the students ListClassroomStudents returns for a
// classroom (the metrics service's recently active students), in any order.
func (f *Feed) SetStudents(classroomID string, students ...*metricsv1.ClassroomStudent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.students == nil {
		f.students = map[string][]*metricsv1.ClassroomStudent{}
	}
	sorted := slices.Clone(students)
	slices.SortFunc(sorted, func(a, b *metricsv1.ClassroomStudent) int { return strings.Compare(a.GetStudentId(), b.GetStudentId()) })
	f.students[classroomID] = sorted
}

// ListClassroomStudents serves the students set by SetStudents, by student
// id, paged like the real service (the token is the last student id).
func (f *Feed) ListClassroomStudents(_ context.Context, req *metricsv1.ListClassroomStudentsRequest) (*metricsv1.ListClassroomStudentsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size := int(req.GetPageSize())
	if size <= 0 {
		size = 100
	}
	resp := &metricsv1.ListClassroomStudentsResponse{}
	for _, st := range f.students[req.GetClassroomId()] {
		if st.GetStudentId() <= req.GetPageToken() {
			continue
		}
		if len(resp.Students) == size {
			resp.NextPageToken = resp.Students[size-1].GetStudentId()
			break
		}
		resp.Students = append(resp.Students, proto.Clone(st).(*metricsv1.ClassroomStudent))
	}
	return resp, nil
}

// Watches is how many watches were opened so far.
func (f *Feed) Watches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches
}

// WatchFrustrationEvents implements the real service's contract.
func (f *Feed) WatchFrustrationEvents(req *metricsv1.WatchFrustrationEventsRequest, stream metricsv1.MetricsService_WatchFrustrationEventsServer) error {
	f.mu.Lock()
	f.watches++
	f.mu.Unlock()
	next := req.GetAfterId()
	for {
		f.mu.Lock()
		pending := f.events[min(int(next), len(f.events)):]
		changed := f.changed
		f.mu.Unlock()
		for _, e := range pending {
			if err := stream.Send(&metricsv1.WatchFrustrationEventsResponse{Event: e}); err != nil {
				return err
			}
			next = e.EventId
		}
		if len(pending) > 0 {
			continue
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-changed:
		}
	}
}
