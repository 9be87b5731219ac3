package adapters

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/domainerr"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
)

// countingConn answers ListTeacherClassrooms from classrooms, counting calls;
// release, when set, holds each call until closed.
type countingConn struct {
	calls      atomic.Int32
	classrooms []string
	release    chan struct{}
	err        error
}

func (c *countingConn) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	c.calls.Add(1)
	if c.release != nil {
		<-c.release
	}
	if c.err != nil {
		return c.err
	}
	resp := reply.(*dashboardv1.ListTeacherClassroomsResponse)
	for _, id := range c.classrooms {
		resp.Assignments = append(resp.Assignments, &dashboardv1.ClassroomAssignment{TeacherId: args.(*dashboardv1.ListTeacherClassroomsRequest).GetTeacherId(), ClassroomId: id})
	}
	return nil
}

func (c *countingConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("no streams")
}

func TestDashboardClassroomsCachesAnswersNegativeOnesToo(t *testing.T) {
	ctx := context.Background()
	conn := &countingConn{classrooms: []string{"room-a"}}
	d := NewDashboardClassrooms(time.Minute)
	now := time.Now()
	d.now = func() time.Time { return now }
	d.SetConn(conn, "dash:7004")
	for _, c := range []struct {
		classroom string
		want      bool
	}{{"room-a", true}, {"room-b", false}, {"room-a", true}, {"room-b", false}} {
		got, err := d.TeacherHasClassroom(ctx, "alice", c.classroom)
		if err != nil || got != c.want {
			t.Fatalf("TeacherHasClassroom(alice, %s) = %v, %v; want %v", c.classroom, got, err, c.want)
		}
	}
	if n := conn.calls.Load(); n != 1 {
		t.Errorf("%d calls to the dashboard within the TTL, want 1", n)
	}
	now = now.Add(time.Minute)
	if _, err := d.TeacherHasClassroom(ctx, "alice", "room-b"); err != nil {
		t.Fatal(err)
	}
	if n := conn.calls.Load(); n != 2 {
		t.Errorf("%d calls after the TTL, want 2", n)
	}
}

func TestDashboardClassroomsSharesOneCallPerTeacher(t *testing.T) {
	conn := &countingConn{classrooms: []string{"room-a"}, release: make(chan struct{})}
	d := NewDashboardClassrooms(time.Minute)
	d.SetConn(conn, "dash:7004")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if ok, err := d.TeacherHasClassroom(context.Background(), "alice", "room-a"); err != nil || !ok {
				errs <- errors.Join(err, errors.New("not allowed"))
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for conn.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(conn.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// One shared call; a goroutine scheduled so late that it missed the
	// cache just before the answer was stored starts at most one more.
	if n := conn.calls.Load(); n > 2 {
		t.Errorf("%d calls for 20 concurrent checks of one teacher, want 1 (2 at most)", n)
	}
}

func TestDashboardClassroomsFailsClosed(t *testing.T) {
	conn := &countingConn{err: status.Error(codes.Unavailable, "connection refused")}
	d := NewDashboardClassrooms(time.Minute)
	if _, err := d.TeacherHasClassroom(context.Background(), "alice", "room-a"); domainerr.KindOf(err) != domainerr.Unavailable {
		t.Errorf("without a dashboard: %v, want Unavailable", err)
	}
	d.SetConn(conn, "dash:7004")
	for range 2 {
		ok, err := d.TeacherHasClassroom(context.Background(), "alice", "room-a")
		if ok || domainerr.KindOf(err) != domainerr.Unavailable {
			t.Errorf("dashboard down: %v, %v; want false, Unavailable", ok, err)
		}
	}
	if n := conn.calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2: failures are not cached", n)
	}
}
