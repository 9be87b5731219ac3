package service_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// The overview shows each student's one status by precedence with reasons,
// and the classroom's hotspots apart.
func TestClassroomOverview(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "t1", "room-a")
	e.feed.Append(
		rageClick("room-a", "ann"),
		event("room-a", "ben", metricsv1.Indicator_INDICATOR_RAPID_GUESSING, metricsv1.Severity_SEVERITY_WARNING),
		event("room-a", "ben", metricsv1.Indicator_INDICATOR_STRUGGLE, metricsv1.Severity_SEVERITY_WARNING),
		event("room-a", "cat", metricsv1.Indicator_INDICATOR_RAPID_GUESSING, metricsv1.Severity_SEVERITY_WARNING),
		event("room-a", "cat", metricsv1.Indicator_INDICATOR_IDLE, metricsv1.Severity_SEVERITY_WARNING),
		event("room-a", "dan", metricsv1.Indicator_INDICATOR_WHEEL_SPINNING, metricsv1.Severity_SEVERITY_CRITICAL),
		&metricsv1.FrustrationEvent{ClassroomId: "room-a", ItemId: "fractions-3", Indicator: metricsv1.Indicator_INDICATOR_CLASSROOM_HOTSPOT,
			Severity: metricsv1.Severity_SEVERITY_HIGH, Reasons: []string{"4 of 10 active students struggle on fractions-3"}},
	)
	e.waitAlerts(t, "t1", 7)
	// The metrics service's active students: eve has no alert (ok, with her
	// last activity); ann's events are newer than her alert.
	lastEve, lastAnn := time.Now().Add(-2*time.Minute).UTC().Truncate(time.Second), time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	e.feed.SetStudents("room-a",
		&metricsv1.ClassroomStudent{StudentId: "eve", LastEventAt: timestamppb.New(lastEve), Events: 12, CurrentItemId: "fractions-2"},
		&metricsv1.ClassroomStudent{StudentId: "ann", LastEventAt: timestamppb.New(lastAnn), Events: 30, CurrentItemId: "fractions-4"})
	e.feed.SetStudents("room-b", &metricsv1.ClassroomStudent{StudentId: "zed", LastEventAt: timestamppb.New(lastEve), Events: 1})
	ov, err := e.cli.GetClassroomOverview(e.ctx, &dashboardv1.GetClassroomOverviewRequest{TeacherId: "t1", ClassroomId: "room-a"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		student string
		state   dashboardv1.StudentState
	}{
		{"dan", dashboardv1.StudentState_STUDENT_STATE_CRITICAL},
		{"cat", dashboardv1.StudentState_STUDENT_STATE_IDLE},
		{"ben", dashboardv1.StudentState_STUDENT_STATE_MISUSE},
		{"ann", dashboardv1.StudentState_STUDENT_STATE_STRUGGLE},
		{"eve", dashboardv1.StudentState_STUDENT_STATE_OK},
	}
	if len(ov.GetStudents()) != len(want) {
		t.Fatalf("overview lists %d students, want %d: %v", len(ov.GetStudents()), len(want), ov.GetStudents())
	}
	for i, w := range want[:4] {
		got := ov.GetStudents()[i]
		if got.GetStudentId() != w.student || got.GetState() != w.state || len(got.GetReasons()) == 0 || len(got.GetOpenAlertIds()) == 0 {
			t.Errorf("student %d = %v, want %s %v with reasons and open alerts", i, got, w.student, w.state)
		}
	}
	if ann := ov.GetStudents()[3]; !ann.GetLastEventAt().AsTime().Equal(lastAnn) || ann.GetCurrentItemId() != "fractions-4" {
		t.Errorf("ann = %v, want last activity %v on fractions-4 from the metrics service", ann, lastAnn)
	}
	eve := ov.GetStudents()[4]
	if eve.GetStudentId() != "eve" || eve.GetState() != dashboardv1.StudentState_STUDENT_STATE_OK || len(eve.GetReasons()) != 0 ||
		len(eve.GetOpenAlertIds()) != 0 || !eve.GetLastEventAt().AsTime().Equal(lastEve) || eve.GetCurrentItemId() != "fractions-2" {
		t.Errorf("eve = %v, want ok, no reasons or alerts, last activity %v on fractions-2", eve, lastEve)
	}
	if h := ov.GetHotspots(); len(h) != 1 || h[0].GetItemId() != "fractions-3" || h[0].GetStudentId() != "" {
		t.Fatalf("hotspots = %v, want the fractions-3 classroom alert", h)
	}
	if !ov.GetAlertsEnabled() {
		t.Fatal("alerts_enabled is false on an enabled dashboard")
	}
}

// Bad input is INVALID_ARGUMENT naming the field.
func TestBadInput(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	long := strings.Repeat("x", 129)
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"assign without teacher", func() error {
			return second(e.cli.AssignClassroom(e.ctx, &dashboardv1.AssignClassroomRequest{ClassroomId: "c"}))
		}, "teacher_id"},
		{"assign without classroom", func() error {
			return second(e.cli.AssignClassroom(e.ctx, &dashboardv1.AssignClassroomRequest{TeacherId: "t"}))
		}, "classroom_id"},
		{"assign long classroom", func() error {
			return second(e.cli.AssignClassroom(e.ctx, &dashboardv1.AssignClassroomRequest{TeacherId: "t", ClassroomId: long}))
		}, "classroom_id"},
		{"list without teacher", func() error { return second(e.cli.ListAlerts(e.ctx, &dashboardv1.ListAlertsRequest{})) }, "teacher_id"},
		{"list bad page size", func() error {
			return second(e.cli.ListAlerts(e.ctx, &dashboardv1.ListAlertsRequest{TeacherId: "t", PageSize: 5000}))
		}, "page_size"},
		{"list bad page token", func() error {
			return second(e.cli.ListAlerts(e.ctx, &dashboardv1.ListAlertsRequest{TeacherId: "t", PageToken: "nonsense!"}))
		}, "page_token"},
		{"list bad state", func() error {
			return second(e.cli.ListAlerts(e.ctx, &dashboardv1.ListAlertsRequest{TeacherId: "t", States: []dashboardv1.AlertState{9}}))
		}, "states"},
		{"list bad severity", func() error {
			return second(e.cli.ListAlerts(e.ctx, &dashboardv1.ListAlertsRequest{TeacherId: "t", MinSeverity: 9}))
		}, "min_severity"},
		{"ack without id", func() error {
			return second(e.cli.AcknowledgeAlert(e.ctx, &dashboardv1.AcknowledgeAlertRequest{TeacherId: "t"}))
		}, "alert_id"},
		{"resolve without outcome", func() error {
			return second(e.cli.ResolveAlert(e.ctx, &dashboardv1.ResolveAlertRequest{TeacherId: "t", AlertId: 1}))
		}, "outcome"},
		{"resolve long notes", func() error {
			return second(e.cli.ResolveAlert(e.ctx, &dashboardv1.ResolveAlertRequest{TeacherId: "t", AlertId: 1, Outcome: 1, Notes: strings.Repeat("n", 5000)}))
		}, "notes"},
		{"intervene without action", func() error {
			return second(e.cli.RecordIntervention(e.ctx, &dashboardv1.RecordInterventionRequest{TeacherId: "t", AlertId: 1}))
		}, "action"},
		{"overview without classroom", func() error {
			return second(e.cli.GetClassroomOverview(e.ctx, &dashboardv1.GetClassroomOverviewRequest{TeacherId: "t"}))
		}, "classroom_id"},
		{"subscribe with an empty classroom", func() error {
			s, err := e.cli.SubscribeAlerts(e.ctx, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t", ClassroomIds: []string{""}})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}, "classroom_ids"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := status.Convert(c.call())
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("%v, want INVALID_ARGUMENT", st.Err())
			}
			var field string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
					field = br.GetFieldViolations()[0].GetField()
				}
			}
			if field != c.field {
				t.Fatalf("names field %q (%s), want %q", field, st.Message(), c.field)
			}
		})
	}
}

// ListAlerts pages newest first and filters by state and severity.
func TestListAlertsPagesAndFilters(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "t1", "room-a", "room-b")
	for i := range 25 {
		room := "room-a"
		if i%5 == 0 {
			room = "room-b"
		}
		sev := metricsv1.Severity_SEVERITY_WARNING
		if i%10 == 0 {
			sev = metricsv1.Severity_SEVERITY_HIGH
		}
		e.feed.Append(event(room, "s", metricsv1.Indicator_INDICATOR_STRUGGLE, sev))
	}
	all := e.waitAlerts(t, "t1", 25)
	paged := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "t1", PageSize: 4})
	if len(paged) != 25 {
		t.Fatalf("paging by 4 returned %d alerts, want 25", len(paged))
	}
	for i := range paged {
		if paged[i].GetAlertId() != all[i].GetAlertId() || (i > 0 && paged[i].GetAlertId() >= paged[i-1].GetAlertId()) {
			t.Fatalf("page order differs at %d: not newest first", i)
		}
	}
	if got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "t1", ClassroomIds: []string{"room-b"}}); len(got) != 5 {
		t.Fatalf("room-b has %d alerts, want 5", len(got))
	}
	if got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "t1", MinSeverity: metricsv1.Severity_SEVERITY_HIGH}); len(got) != 3 {
		t.Fatalf("%d alerts at least high, want 3", len(got))
	}
	if _, err := e.cli.AcknowledgeAlert(e.ctx, &dashboardv1.AcknowledgeAlertRequest{TeacherId: "t1", AlertId: all[0].GetAlertId()}); err != nil {
		t.Fatal(err)
	}
	got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "t1", States: []dashboardv1.AlertState{dashboardv1.AlertState_ALERT_STATE_ACKNOWLEDGED}})
	if len(got) != 1 || got[0].GetAlertId() != all[0].GetAlertId() {
		t.Fatalf("acknowledged alerts = %v, want the one acknowledged", ids(got))
	}
}

// TEACHER_DASHBOARD_ENABLED=false raises no alert, keeps the rest readable
// and says so.
func TestDashboardDisabled(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true, Disabled: true})
	e.assign(t, "t1", "room-a")
	e.feed.Append(rageClick("room-a", "s1"))
	resp, err := e.cli.ListTeacherClassrooms(e.ctx, &dashboardv1.ListTeacherClassroomsRequest{TeacherId: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAlertsEnabled() || len(resp.GetAssignments()) != 1 || resp.GetAssignments()[0].GetDisplayName() != "room room-a" {
		t.Fatalf("ListTeacherClassrooms on a disabled dashboard = %v", resp)
	}
	if e.feed.Watches() != 0 {
		t.Fatal("a disabled dashboard follows frustration events")
	}
	if got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "t1"}); len(got) != 0 {
		t.Fatalf("a disabled dashboard raised %d alerts", len(got))
	}
}

// A student who went idle and then came back shows ok at once, not idle
// until the idle alert is ten minutes old: the overview judges the idle alert
// against the student's last raw event from the metrics service (regression).
// The idle alert stays open for the teacher to resolve.
func TestOverviewIdleEndsWhenTheStudentIsBack(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "t1", "room-a")
	idleAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	idle := func(student string) *metricsv1.FrustrationEvent {
		ev := event("room-a", student, metricsv1.Indicator_INDICATOR_IDLE, metricsv1.Severity_SEVERITY_WARNING)
		ev.TriggeredAt = timestamppb.New(idleAt)
		return ev
	}
	e.feed.Append(idle("gus"), idle("hal"))
	e.waitAlerts(t, "t1", 2)
	e.feed.SetStudents("room-a",
		// gus worked again after the idle alert triggered (last event + 2 min)
		&metricsv1.ClassroomStudent{StudentId: "gus", LastEventAt: timestamppb.New(idleAt.Add(20 * time.Second)), Events: 40, CurrentItemId: "item-1"},
		// hal's last event is the one before the silence
		&metricsv1.ClassroomStudent{StudentId: "hal", LastEventAt: timestamppb.New(idleAt.Add(-2 * time.Minute)), Events: 9, CurrentItemId: "item-1"})
	ov, err := e.cli.GetClassroomOverview(e.ctx, &dashboardv1.GetClassroomOverviewRequest{TeacherId: "t1", ClassroomId: "room-a"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dashboardv1.StudentStatus{}
	for _, s := range ov.GetStudents() {
		got[s.GetStudentId()] = s
	}
	if hal := got["hal"]; hal.GetState() != dashboardv1.StudentState_STUDENT_STATE_IDLE || len(hal.GetReasons()) == 0 {
		t.Errorf("hal = %v, want idle with its reason: no event since the idle alert", hal)
	}
	gus := got["gus"]
	if gus.GetState() != dashboardv1.StudentState_STUDENT_STATE_OK || len(gus.GetReasons()) != 0 || len(gus.GetActiveIndicators()) != 0 {
		t.Errorf("gus = %v, want ok: an event came after the idle alert's trigger time", gus)
	}
	if len(gus.GetOpenAlertIds()) != 1 || !gus.GetLastEventAt().AsTime().Equal(idleAt.Add(20*time.Second)) {
		t.Errorf("gus = %v, want the idle alert still open and the last activity from the metrics service", gus)
	}
}
