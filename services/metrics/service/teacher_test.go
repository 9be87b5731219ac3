package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/pgtest"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// teacherEnv is a real dashboard and a real metrics service that asks it
// for teachers' classrooms, with one teacher's client of the metrics service.
type teacherEnv struct {
	dash    *dashboardtest.Dashboard
	metrics *metricstest.Metrics
	teacher metricsv1.MetricsServiceClient
	ctx     context.Context
}

func newTeacherEnv(t *testing.T, ttl time.Duration) *teacherEnv {
	t.Helper()
	keys := authtest.New(t)
	feed := dashboardtest.StartFeed(t)
	dash := dashboardtest.Start(t, pgtest.NewDatabase(t), dashboardtest.Options{MetricsAddr: feed.Addr, Keys: keys, Quiet: true})
	m := metricstest.Start(t, pgtest.NewDatabase(t), metricstest.Options{Keys: keys, Quiet: true, DashboardAddr: dash.Addr, TeacherClassroomsTTL: ttl})
	conn, err := grpcclient.Dial(m.Addr, grpcclient.WithBearer(keys.Token(t, auth.Spec{Role: auth.RoleTeacher, TeacherID: "alice", TTL: time.Hour})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &teacherEnv{dash: dash, metrics: m, teacher: metricsv1.NewMetricsServiceClient(conn), ctx: ctx}
}

// calls are the teacher's metrics calls that name classroom.
func (e *teacherEnv) calls(classroom string) map[string]func() error {
	now := time.Now()
	return map[string]func() error{
		"GetClassroomSnapshot": func() error {
			_, err := e.teacher.GetClassroomSnapshot(e.ctx, &metricsv1.GetClassroomSnapshotRequest{ClassroomId: classroom, Minute: timestamppb.New(now)})
			if status.Code(err) == codes.NotFound {
				return nil // allowed: the classroom has no events yet
			}
			return err
		},
		"ListClassroomSnapshots": func() error {
			_, err := e.teacher.ListClassroomSnapshots(e.ctx, &metricsv1.ListClassroomSnapshotsRequest{ClassroomId: classroom})
			return err
		},
		"ListFrustrationEvents": func() error {
			_, err := e.teacher.ListFrustrationEvents(e.ctx, &metricsv1.ListFrustrationEventsRequest{ClassroomIds: []string{classroom}})
			return err
		},
		"GetRatingSummary": func() error {
			_, err := e.teacher.GetRatingSummary(e.ctx, &metricsv1.GetRatingSummaryRequest{ClassroomId: classroom})
			return err
		},
		"GetDetectionSettings": func() error {
			_, err := e.teacher.GetDetectionSettings(e.ctx, &metricsv1.GetDetectionSettingsRequest{ClassroomId: classroom})
			return err
		},
		"UpdateDetectionSettings": func() error {
			_, err := e.teacher.UpdateDetectionSettings(e.ctx, &metricsv1.UpdateDetectionSettingsRequest{Settings: &metricsv1.DetectionSettings{
				ClassroomId: classroom, Sensitivity: metricsv1.Sensitivity_SENSITIVITY_HIGH}})
			return err
		},
		"WatchFrustrationEvents": func() error {
			ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
			defer cancel()
			stream, err := e.teacher.WatchFrustrationEvents(ctx, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: []string{classroom}})
			if err != nil {
				return err
			}
			// Allowed: the stream stays open with nothing to send until
			// the deadline; refused: the first Recv says why.
			if _, err = stream.Recv(); status.Code(err) == codes.DeadlineExceeded {
				return nil
			}
			return err
		},
	}
}

func (e *teacherEnv) assign(t *testing.T, classroom string) {
	t.Helper()
	if _, err := e.dash.Client().AssignClassroom(e.ctx, &dashboardv1.AssignClassroomRequest{TeacherId: "alice", ClassroomId: classroom, DisplayName: classroom}); err != nil {
		t.Fatal(err)
	}
}

func TestTeacherReadsAssignedClassroomsOnly(t *testing.T) {
	e := newTeacherEnv(t, 0)
	e.assign(t, "room-a")
	for name, call := range e.calls("room-a") {
		if err := call(); err != nil {
			t.Errorf("%s on an assigned classroom: %v", name, err)
		}
	}
	for name, call := range e.calls("room-b") {
		err := call()
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "room-b") {
			t.Errorf("%s on another classroom: %v, want PERMISSION_DENIED naming room-b", name, err)
		}
	}
	// A teacher names its classrooms: never "all of them".
	_, err := e.teacher.ListFrustrationEvents(e.ctx, &metricsv1.ListFrustrationEventsRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "classroom_ids") {
		t.Errorf("ListFrustrationEvents without classrooms: %v, want INVALID_ARGUMENT naming classroom_ids", err)
	}
	_, err = e.teacher.GetRatingSummary(e.ctx, &metricsv1.GetRatingSummaryRequest{AppId: "fractions-app"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "classroom_id") {
		t.Errorf("GetRatingSummary of an app without a classroom: %v, want INVALID_ARGUMENT naming classroom_id", err)
	}
}

func TestTeacherUnassignmentTakesEffectAfterTheTTL(t *testing.T) {
	const ttl = time.Second
	e := newTeacherEnv(t, ttl)
	get := e.calls("room-a")["GetDetectionSettings"]
	// Refused first (and the refusal is cached), then allowed once the
	// assignment is seen.
	if err := get(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("before the assignment: %v, want PERMISSION_DENIED", err)
	}
	e.assign(t, "room-a")
	waitFor(t, 10*time.Second, "the assignment to take effect", func() error { return get() })
	if _, err := e.dash.Client().UnassignClassroom(e.ctx, &dashboardv1.UnassignClassroomRequest{TeacherId: "alice", ClassroomId: "room-a"}); err != nil {
		t.Fatal(err)
	}
	unassigned := time.Now()
	waitFor(t, 10*time.Second, "the unassignment to take effect", func() error {
		if err := get(); status.Code(err) != codes.PermissionDenied {
			return status.Errorf(codes.Unknown, "still %v", err)
		}
		return nil
	})
	if took := time.Since(unassigned); took > ttl+2*time.Second {
		t.Errorf("the unassignment took %v to take effect, TTL %v", took, ttl)
	}
}

// An open watch is cut when its classroom is unassigned from the teacher,
// within the resolver's TTL, with PERMISSION_DENIED naming the classroom.
func TestTeacherWatchIsCutWhenUnassigned(t *testing.T) {
	const ttl = time.Second
	e := newTeacherEnv(t, ttl)
	e.assign(t, "room-a")
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	stream, err := e.teacher.WatchFrustrationEvents(ctx, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: []string{"room-a"}})
	if err != nil {
		t.Fatal(err)
	}
	recv := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		recv <- err
	}()
	select {
	case err := <-recv:
		t.Fatalf("the watch of an assigned classroom ended: %v", err)
	case <-time.After(2 * ttl):
	}
	if _, err := e.dash.Client().UnassignClassroom(e.ctx, &dashboardv1.UnassignClassroomRequest{TeacherId: "alice", ClassroomId: "room-a"}); err != nil {
		t.Fatal(err)
	}
	unassigned := time.Now()
	err = <-recv
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "room-a") {
		t.Fatalf("the watch after the unassignment: %v, want PERMISSION_DENIED naming room-a", err)
	}
	t.Logf("cut %v after the unassignment (TTL %v)", time.Since(unassigned).Round(time.Millisecond), ttl)
}

func TestTeacherCheckFailsClosedWithoutTheDashboard(t *testing.T) {
	e := newTeacherEnv(t, time.Second)
	e.assign(t, "room-a")
	get := e.calls("room-a")["GetDetectionSettings"]
	if err := get(); err != nil {
		t.Fatal(err)
	}
	e.dash.Stop()
	// Once the cached answer expires, the check needs the dashboard.
	waitFor(t, 10*time.Second, "UNAVAILABLE with the dashboard down", func() error {
		err := get()
		if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "dashboard") {
			return status.Errorf(codes.Unknown, "got %v", err)
		}
		return nil
	})
	// Other roles do not depend on the dashboard.
	if _, err := e.metrics.Client().GetDetectionSettings(e.ctx, &metricsv1.GetDetectionSettingsRequest{ClassroomId: "room-a"}); err != nil {
		t.Errorf("an admin with the dashboard down: %v", err)
	}
	e.dash.Restart()
	waitFor(t, 10*time.Second, "the check to recover with the dashboard", get)
}

// waitFor polls f until it returns nil or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", within, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
