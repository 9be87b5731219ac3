package service_test

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// Every frustration event becomes exactly one alert, across a restart of the
// dashboard and a restart of the metrics service, each in the middle of a
// stream of events.
func TestAlertsExactlyOnceAcrossRestarts(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "t1", "room-a", "room-b")
	appendN := func(n int) {
		for i := range n {
			room := "room-a"
			if i%2 == 1 {
				room = "room-b"
			}
			e.feed.Append(rageClick(room, "s"+strconv.Itoa(i%7)))
		}
	}
	appendN(50)
	e.waitAlerts(t, "t1", 50)

	e.dash.Stop()
	appendN(30) // raised while the dashboard is down
	e.dash.Restart()
	e.waitAlerts(t, "t1", 80)

	e.feed.Stop()
	e.feed.Restart()
	appendN(20)
	got := e.waitAlerts(t, "t1", 100)

	seen := map[uint64]bool{}
	for _, a := range got {
		if seen[a.GetFrustrationEventId()] {
			t.Fatalf("frustration event %d has two alerts", a.GetFrustrationEventId())
		}
		seen[a.GetFrustrationEventId()] = true
	}
	for id := uint64(1); id <= 100; id++ {
		if !seen[id] {
			t.Fatalf("frustration event %d has no alert", id)
		}
	}
	if e.feed.Watches() < 3 {
		t.Fatalf("the follower opened %d watches; the restarts should have made it reconnect", e.feed.Watches())
	}
}

// A teacher sees only the classrooms assigned to them: asking for another is
// PERMISSION_DENIED on every RPC that names it, and acting on an alert of
// another teacher's classroom is too.
func TestTeacherReadingAnotherTeachersClassroomIsRefused(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "alice", "room-a")
	e.assign(t, "bob", "room-b")
	e.feed.Append(rageClick("room-a", "s1"))
	alerts := e.waitAlerts(t, "alice", 1)
	if got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "bob"}); len(got) != 0 {
		t.Fatalf("bob sees %d alerts of alice's classroom", len(got))
	}
	id := alerts[0].GetAlertId()

	stream, err := e.cli.SubscribeAlerts(e.ctx, &dashboardv1.SubscribeAlertsRequest{TeacherId: "bob", ClassroomIds: []string{"room-a"}})
	if err == nil {
		_, err = stream.Recv()
	}
	for name, err := range map[string]error{
		"SubscribeAlerts": err,
		"ListAlerts":      second(e.cli.ListAlerts(e.ctx, &dashboardv1.ListAlertsRequest{TeacherId: "bob", ClassroomIds: []string{"room-a"}})),
		"Overview":        second(e.cli.GetClassroomOverview(e.ctx, &dashboardv1.GetClassroomOverviewRequest{TeacherId: "bob", ClassroomId: "room-a"})),
		"Acknowledge":     second(e.cli.AcknowledgeAlert(e.ctx, &dashboardv1.AcknowledgeAlertRequest{TeacherId: "bob", AlertId: id})),
		"Resolve": second(e.cli.ResolveAlert(e.ctx, &dashboardv1.ResolveAlertRequest{TeacherId: "bob", AlertId: id,
			Outcome: dashboardv1.AlertOutcome_ALERT_OUTCOME_HELPED})),
		"Intervene": second(e.cli.RecordIntervention(e.ctx, &dashboardv1.RecordInterventionRequest{TeacherId: "bob", AlertId: id,
			Action: dashboardv1.InterventionAction_INTERVENTION_ACTION_CHECKED_IN})),
	} {
		if code(err) != codes.PermissionDenied {
			t.Errorf("%s by bob on alice's classroom: %v, want PERMISSION_DENIED", name, err)
		}
	}
	// Nothing bob tried changed the alert.
	if got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "alice"}); got[0].GetState() != dashboardv1.AlertState_ALERT_STATE_OPEN || len(got[0].GetInterventions()) != 0 {
		t.Fatalf("alice's alert after bob's attempts: %v", got[0])
	}
}

func second[T any](_ T, err error) error { return err }

// The alert state machine: open → acknowledged → resolved; a second resolve
// or an ack of a resolved alert is FAILED_PRECONDITION.
func TestAlertStateMachine(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "t1", "room-a")
	ack := func(id uint64) error {
		return second(e.cli.AcknowledgeAlert(e.ctx, &dashboardv1.AcknowledgeAlertRequest{TeacherId: "t1", AlertId: id}))
	}
	resolve := func(id uint64) error {
		return second(e.cli.ResolveAlert(e.ctx, &dashboardv1.ResolveAlertRequest{TeacherId: "t1", AlertId: id,
			Outcome: dashboardv1.AlertOutcome_ALERT_OUTCOME_HELPED, Notes: "sat with them"}))
	}
	intervene := func(id uint64) error {
		return second(e.cli.RecordIntervention(e.ctx, &dashboardv1.RecordInterventionRequest{TeacherId: "t1", AlertId: id,
			Action: dashboardv1.InterventionAction_INTERVENTION_ACTION_GAVE_HINT, Notes: "hint on step 2"}))
	}
	cases := []struct {
		name  string
		steps []func(uint64) error
		want  []codes.Code
		state dashboardv1.AlertState
	}{
		{"ack", []func(uint64) error{ack}, []codes.Code{codes.OK}, dashboardv1.AlertState_ALERT_STATE_ACKNOWLEDGED},
		{"ack twice", []func(uint64) error{ack, ack}, []codes.Code{codes.OK, codes.OK}, dashboardv1.AlertState_ALERT_STATE_ACKNOWLEDGED},
		{"ack then resolve", []func(uint64) error{ack, resolve}, []codes.Code{codes.OK, codes.OK}, dashboardv1.AlertState_ALERT_STATE_RESOLVED},
		{"resolve open", []func(uint64) error{resolve}, []codes.Code{codes.OK}, dashboardv1.AlertState_ALERT_STATE_RESOLVED},
		{"resolve twice", []func(uint64) error{resolve, resolve}, []codes.Code{codes.OK, codes.FailedPrecondition}, dashboardv1.AlertState_ALERT_STATE_RESOLVED},
		{"ack resolved", []func(uint64) error{resolve, ack}, []codes.Code{codes.OK, codes.FailedPrecondition}, dashboardv1.AlertState_ALERT_STATE_RESOLVED},
		{"intervene on open acknowledges", []func(uint64) error{intervene}, []codes.Code{codes.OK}, dashboardv1.AlertState_ALERT_STATE_ACKNOWLEDGED},
		{"intervene after resolve", []func(uint64) error{resolve, intervene}, []codes.Code{codes.OK, codes.OK}, dashboardv1.AlertState_ALERT_STATE_RESOLVED},
	}
	for i := range cases {
		e.feed.Append(rageClick("room-a", "s"+strconv.Itoa(i)))
	}
	alerts := e.waitAlerts(t, "t1", len(cases))
	slices.Reverse(alerts) // oldest first: case i has alert i
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := alerts[i].GetAlertId()
			for j, step := range c.steps {
				if got := code(step(id)); got != c.want[j] {
					t.Fatalf("step %d: %v, want %v", j, got, c.want[j])
				}
			}
			got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: "t1", StudentId: alerts[i].GetStudentId()})
			if len(got) != 1 || got[0].GetState() != c.state {
				t.Fatalf("alert after the steps: %v, want state %v", got, c.state)
			}
			a := got[0]
			if a.GetState() == dashboardv1.AlertState_ALERT_STATE_RESOLVED &&
				(a.GetResolvedBy() != "t1" || a.GetOutcome() != dashboardv1.AlertOutcome_ALERT_OUTCOME_HELPED || a.GetResolutionNotes() != "sat with them" || a.GetResolvedAt() == nil) {
				t.Fatalf("resolved alert lacks its resolution: %v", a)
			}
			if a.GetState() != dashboardv1.AlertState_ALERT_STATE_OPEN && (a.GetAcknowledgedBy() != "t1" || a.GetAcknowledgedAt() == nil) {
				t.Fatalf("alert lacks who acknowledged it: %v", a)
			}
		})
	}
	if code(ack(999999)) != codes.NotFound {
		t.Fatalf("ack of an unknown alert: want NOT_FOUND")
	}
}

// A subscription resumed with the last id it saw gets exactly what came
// after, including alerts raised while it was away; one with after 0 starts
// with the unresolved alerts.
func TestSubscribeResumesWithoutLossOrDuplicates(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "t1", "room-a")
	e.feed.Append(rageClick("room-a", "s1"), rageClick("room-a", "s2"), rageClick("room-a", "s3"))
	stored := e.waitAlerts(t, "t1", 3)
	if _, err := e.cli.ResolveAlert(e.ctx, &dashboardv1.ResolveAlertRequest{TeacherId: "t1", AlertId: stored[2].GetAlertId(), // the oldest
		Outcome: dashboardv1.AlertOutcome_ALERT_OUTCOME_FALSE_POSITIVE}); err != nil {
		t.Fatal(err)
	}

	s := e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1"})
	first := s.recv(t, 2, 5*time.Second)
	if want := []uint64{stored[1].GetAlertId(), stored[0].GetAlertId()}; !slices.Equal(ids(first), want) {
		t.Fatalf("after_alert_id 0 starts with %v, want the unresolved %v", ids(first), want)
	}
	e.feed.Append(rageClick("room-a", "s4"))
	live := s.recv(t, 1, 2*time.Second)
	if s.heartbeats != 1 {
		t.Fatalf("%d heartbeats between the stored alerts and the live one, want 1 (the start of live delivery)", s.heartbeats)
	}
	s.cancel()

	e.feed.Append(rageClick("room-a", "s5"), rageClick("room-a", "s6")) // while away
	s = e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1", AfterAlertId: live[0].GetAlertId()})
	missed := s.recv(t, 2, 5*time.Second)
	e.feed.Append(rageClick("room-a", "s7"))
	more := s.recv(t, 1, 2*time.Second)
	all := append(append(missed, more...), live...)
	students := map[string]int{}
	for _, a := range all {
		students[a.GetStudentId()]++
	}
	for _, st := range []string{"s4", "s5", "s6", "s7"} {
		if students[st] != 1 {
			t.Fatalf("student %s's alert arrived %d times across the resume (%v)", st, students[st], students)
		}
	}
	if !slices.IsSorted(ids(append(missed, more...))) {
		t.Fatalf("alert ids out of order: %v", ids(all))
	}
}

// A classroom assigned while a subscription is live reaches it without a
// reconnection; one unassigned stops reaching it. Severity filters apply.
func TestAssignmentReachesLiveSubscription(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	e.assign(t, "t1", "room-a")
	s := e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1"})
	hi := e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1", MinSeverity: metricsv1.Severity_SEVERITY_HIGH})
	e.feed.Append(rageClick("room-a", "s1"))
	s.recv(t, 1, 2*time.Second)

	e.assign(t, "t1", "room-b")
	e.feed.Append(rageClick("room-b", "s2"))
	if got := s.recv(t, 1, 2*time.Second); got[0].GetClassroomId() != "room-b" {
		t.Fatalf("got %v, want the new classroom's alert", got[0])
	}
	if _, err := e.cli.UnassignClassroom(e.ctx, &dashboardv1.UnassignClassroomRequest{TeacherId: "t1", ClassroomId: "room-a"}); err != nil {
		t.Fatal(err)
	}
	e.feed.Append(rageClick("room-a", "s3"), event("room-b", "s4", metricsv1.Indicator_INDICATOR_WHEEL_SPINNING, metricsv1.Severity_SEVERITY_HIGH))
	got := s.recv(t, 1, 2*time.Second)
	if got[0].GetStudentId() != "s4" {
		t.Fatalf("after unassigning room-a the subscription got %v, want s4's alert of room-b", got[0])
	}
	if got := hi.recv(t, 1, 2*time.Second); got[0].GetStudentId() != "s4" {
		t.Fatalf("min_severity HIGH subscription got %v, want only s4's high alert", got[0])
	}
	if _, err := e.cli.UnassignClassroom(e.ctx, &dashboardv1.UnassignClassroomRequest{TeacherId: "t1", ClassroomId: "room-a"}); code(err) != codes.NotFound {
		t.Fatalf("unassigning twice: %v, want NOT_FOUND", err)
	}
}

// A subscriber too slow to keep up is cut with RESOURCE_EXHAUSTED naming the
// last id it was sent; resuming from the last id it received loses nothing.
func TestSlowSubscriberIsCutAndResumes(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true, SubscriberBuffer: 8})
	e.assign(t, "t1", "room-a")
	s := e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1"})
	const n = 3000
	reasons := []string{strings.Repeat("x", 400)} // big alerts fill the transport's windows sooner
	for i := 0; i < n; i += 500 {
		batch := make([]*metricsv1.FrustrationEvent, 500)
		for j := range batch {
			ev := rageClick("room-a", "s"+strconv.Itoa(i+j))
			ev.Reasons = reasons
			batch[j] = ev
		}
		e.feed.Append(batch...)
	}
	e.waitAlerts(t, "t1", n)
	// Only now read: the subscription must have been cut on the way.
	var got []*dashboardv1.Alert
	var cutErr error
	for {
		a, err := s.next()
		if err != nil {
			cutErr = err
			break
		}
		got = append(got, a)
	}
	st := status.Convert(cutErr)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("a slow subscriber ended with %v after %d alerts, want RESOURCE_EXHAUSTED", cutErr, len(got))
	}
	waitScrape(t, e.dash.PrometheusAddr, `gaia_dashboard_subscribers_cut_slow_total 1`, "gaia_dashboard_subscribers_cut_slow_total")
	var resume string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			resume = info.GetMetadata()["after_alert_id"]
		}
	}
	last := uint64(0)
	if len(got) > 0 {
		last = got[len(got)-1].GetAlertId()
	}
	if resume != strconv.FormatUint(last, 10) {
		t.Fatalf("cut says resume after %q; the last alert received was %d", resume, last)
	}
	if len(got) >= n {
		t.Fatalf("received all %d alerts; the subscriber was never slow", len(got))
	}
	rest := e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1", AfterAlertId: last}).recv(t, n-len(got), 20*time.Second)
	all := append(got, rest...)
	seen := map[string]bool{}
	for _, a := range all {
		if seen[a.GetStudentId()] {
			t.Fatalf("student %s's alert delivered twice", a.GetStudentId())
		}
		seen[a.GetStudentId()] = true
	}
	if len(seen) != n {
		t.Fatalf("delivered %d distinct alerts, want %d", len(seen), n)
	}
}

// 1,000 concurrent subscriptions each get a new alert within a second.
func TestThousandSubscribers(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	const teachers, perTeacher = 100, 10
	for i := range teachers {
		e.assign(t, "t"+strconv.Itoa(i), "room-"+strconv.Itoa(i%20))
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	subs := make([]*sub, 0, teachers*perTeacher)
	for i := range teachers {
		for range perTeacher {
			subs = append(subs, e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t" + strconv.Itoa(i)}))
		}
	}
	// Every stream is registered once it has its headers; then raise one
	// alert per classroom.
	for _, s := range subs {
		if _, err := s.stream.Header(); err != nil {
			t.Fatal(err)
		}
	}
	// Both ends of every stream live in this process, so this bounds the
	// server's share from above.
	perSub := (int64(heap()) - int64(before)) / int64(len(subs))
	t.Logf("heap per subscription (client and server side together): %d bytes", perSub)
	if perSub > 64<<10 {
		t.Fatalf("each subscription holds %d bytes of heap, want under 64 KiB", perSub)
	}
	start := time.Now()
	for r := range 20 {
		e.feed.Append(rageClick("room-"+strconv.Itoa(r), "s"))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.next(); err != nil {
				t.Errorf("recv: %v", err)
				return
			}
			mu.Lock()
			slowest = max(slowest, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("1000 subscribers received their alert; slowest after %s", slowest)
	if slowest > 2*time.Second {
		t.Fatalf("slowest subscriber got its alert after %s", slowest)
	}
}
