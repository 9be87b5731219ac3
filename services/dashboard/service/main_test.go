package service_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/pgtest"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	ctx  context.Context
	feed *dashboardtest.Feed
	dash *dashboardtest.Dashboard
	cli  dashboardv1.DashboardServiceClient
	db   string
}

func newEnv(t *testing.T, opts dashboardtest.Options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &env{ctx: ctx, feed: dashboardtest.StartFeed(t), db: pgtest.NewDatabase(t)}
	opts.MetricsAddr = e.feed.Addr
	e.dash = dashboardtest.Start(t, e.db, opts)
	e.cli = e.dash.Client()
	return e
}

func (e *env) assign(t *testing.T, teacher string, classrooms ...string) {
	t.Helper()
	for _, c := range classrooms {
		if _, err := e.cli.AssignClassroom(e.ctx, &dashboardv1.AssignClassroomRequest{TeacherId: teacher, ClassroomId: c, DisplayName: "room " + c}); err != nil {
			t.Fatalf("assign %s to %s: %v", c, teacher, err)
		}
	}
}

func event(classroom, student string, ind metricsv1.Indicator, sev metricsv1.Severity) *metricsv1.FrustrationEvent {
	return &metricsv1.FrustrationEvent{ClassroomId: classroom, AppId: "app", StudentId: student, ItemId: "item-1",
		Indicator: ind, Severity: sev, Reasons: []string{fmt.Sprintf("%s for %s", ind, student)}}
}

func rageClick(classroom, student string) *metricsv1.FrustrationEvent {
	return event(classroom, student, metricsv1.Indicator_INDICATOR_RAGE_CLICK, metricsv1.Severity_SEVERITY_WARNING)
}

// listAll pages through a teacher's alerts.
func (e *env) listAll(t *testing.T, req *dashboardv1.ListAlertsRequest) []*dashboardv1.Alert {
	t.Helper()
	var out []*dashboardv1.Alert
	for {
		resp, err := e.cli.ListAlerts(e.ctx, req)
		if err != nil {
			t.Fatalf("ListAlerts: %v", err)
		}
		out = append(out, resp.GetAlerts()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// waitAlerts polls until the teacher has n alerts (failing past a deadline).
func (e *env) waitAlerts(t *testing.T, teacher string, n int) []*dashboardv1.Alert {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := e.listAll(t, &dashboardv1.ListAlertsRequest{TeacherId: teacher, PageSize: 1000})
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("teacher %s has %d alerts, want %d", teacher, len(got), n)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type sub struct {
	stream dashboardv1.DashboardService_SubscribeAlertsClient
	cancel context.CancelFunc
	// heartbeats counts the heartbeats next skipped.
	heartbeats int
}

func (e *env) subscribe(t *testing.T, req *dashboardv1.SubscribeAlertsRequest) *sub {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	t.Cleanup(cancel)
	stream, err := e.cli.SubscribeAlerts(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return &sub{stream: stream, cancel: cancel}
}

// recv reads n alerts within the timeout.
func (s *sub) recv(t *testing.T, n int, timeout time.Duration) []*dashboardv1.Alert {
	t.Helper()
	type res struct {
		a   *dashboardv1.Alert
		err error
	}
	ch := make(chan res, 1)
	var out []*dashboardv1.Alert
	deadline := time.After(timeout)
	for len(out) < n {
		go func() {
			m, err := s.next()
			ch <- res{m, err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("after %d of %d alerts: %v", len(out), n, r.err)
			}
			out = append(out, r.a)
		case <-deadline:
			t.Fatalf("received %d of %d alerts within %s", len(out), n, timeout)
		}
	}
	return out
}

// next reads the next alert, skipping heartbeats.
func (s *sub) next() (*dashboardv1.Alert, error) {
	for {
		m, err := s.stream.Recv()
		if err != nil || m.GetAlert() != nil {
			return m.GetAlert(), err
		}
		s.heartbeats++
	}
}

func ids(alerts []*dashboardv1.Alert) []uint64 {
	out := make([]uint64, len(alerts))
	for i, a := range alerts {
		out[i] = a.GetAlertId()
	}
	return out
}

func code(err error) codes.Code { return status.Code(err) }

var _ = io.EOF
