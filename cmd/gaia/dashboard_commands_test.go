package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/pgtest"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// TestTeacherAndAlertsCommands assigns a classroom, watches its alerts live
// across a restart of the dashboard, and lists, acknowledges and resolves one.
func TestTeacherAndAlertsCommands(t *testing.T) {
	feed := dashboardtest.StartFeed(t)
	dash := dashboardtest.Start(t, pgtest.NewDatabase(t), dashboardtest.Options{MetricsAddr: feed.Addr, Quiet: true})
	t.Setenv(tokenEnv, dash.AdminToken)
	cli := func(args ...string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(append(args, "--dashboard", dash.Addr), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := cli("teacher", "classrooms", "--teacher", "t1"); code != 0 || !strings.Contains(out, "no classrooms assigned to t1") {
		t.Fatalf("classrooms before: exit %d\n%s", code, out)
	}
	if code, out := cli("teacher", "assign", "--teacher", "t1", "--classroom", "room-a", "--name", "Year 7 maths"); code != 0 {
		t.Fatalf("assign: exit %d\n%s", code, out)
	}
	if code, out := cli("teacher", "classrooms", "--teacher", "t1"); code != 0 || !strings.Contains(out, "room-a") || !strings.Contains(out, "Year 7 maths") {
		t.Fatalf("classrooms: exit %d\n%s", code, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var watched, watchErr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- watchAlerts(ctx, dash.Client(), &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1"}, true, &watched, &watchErr)
	}()
	raise := func(student string) {
		feed.Append(&metricsv1.FrustrationEvent{ClassroomId: "room-a", StudentId: student, Indicator: metricsv1.Indicator_INDICATOR_RAGE_CLICK,
			Severity: metricsv1.Severity_SEVERITY_WARNING, Reasons: []string{"4 clicks within 0.8 s on one spot"}})
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15 s\nwatch output:\n%s\n%s", what, watched.String(), watchErr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	raise("ann")
	waitFor("ann's alert watched", func() bool { return strings.Contains(watched.String(), `"student_id":"ann"`) })
	dash.Stop()
	raise("ben")
	dash.Restart()
	raise("cat")
	waitFor("ben's and cat's alerts watched after the restart", func() bool { return strings.Count(watched.String(), "\n") == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch ended with %v", err)
	}
	for _, s := range []string{"ann", "ben", "cat"} {
		if n := strings.Count(watched.String(), `"student_id":"`+s+`"`); n != 1 {
			t.Fatalf("%s's alert watched %d times\n%s", s, n, watched.String())
		}
	}
	if !strings.Contains(watchErr.String(), "resubscribing after alert 1") {
		t.Fatalf("the watch did not say it resubscribed: %s", watchErr.String())
	}

	if code, out := cli("alerts", "list", "--teacher", "t1", "--state", "open"); code != 0 || strings.Count(out, "rage_click") != 3 {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, out := cli("alerts", "ack", "1", "--teacher", "t1"); code != 0 || !strings.Contains(out, "acknowledged") {
		t.Fatalf("ack: exit %d\n%s", code, out)
	}
	if code, out := cli("alerts", "resolve", "1", "--teacher", "t1", "--outcome", "helped", "--notes", "sat with ann"); code != 0 || !strings.Contains(out, "resolved") {
		t.Fatalf("resolve: exit %d\n%s", code, out)
	}
	if code, out := cli("alerts", "resolve", "1", "--teacher", "t1", "--outcome", "helped"); code == 0 || !strings.Contains(out, "failed_precondition") {
		t.Fatalf("second resolve: exit %d\n%s", code, out)
	}
	if code, out := cli("alerts", "ack", "2", "--teacher", "t2"); code == 0 || !strings.Contains(out, "permission_denied") {
		t.Fatalf("ack by another teacher: exit %d\n%s", code, out)
	}
	if code, out := cli("alerts", "resolve", "2", "--teacher", "t1", "--outcome", "maybe"); code != exitUsage || !strings.Contains(out, "want one of") {
		t.Fatalf("bad outcome: exit %d\n%s", code, out)
	}
	if code, out := cli("alerts", "intervene", "2", "--teacher", "t1", "--action", "gave_hint"); code != 0 || !strings.Contains(out, "recorded on alert 2") {
		t.Fatalf("intervene: exit %d\n%s", code, out)
	}
	if code, out := cli("teacher", "unassign", "--teacher", "t1", "--classroom", "room-a"); code != 0 {
		t.Fatalf("unassign: exit %d\n%s", code, out)
	}
}
