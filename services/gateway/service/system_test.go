package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/openapitest"
	"github.com/gaia-platform/gaia/internal/pgtest"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// system is the teacher pipeline for real, in this process: a coordinator,
// the metrics service with its frustration detector, the dashboard and the
// gateway, on one test database.
type system struct {
	t       testing.TB
	ctx     context.Context
	db      string
	coord   *coordtest.Cluster
	metrics *metricstest.Metrics
	dash    *dashboardtest.Dashboard
	base    string // the gateway's URL
	// rest is the HTTP client of every REST call, each exchange checked
	// against the OpenAPI document (on the test or benchmark that started
	// the system).
	rest *http.Client
	seq  atomic.Int64
}

func startSystem(t testing.TB, dashOpts dashboardtest.Options) *system {
	t.Helper()
	s := &system{t: t, db: pgtest.NewDatabase(t), rest: openapitest.Client(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	s.ctx = ctx
	s.coord = coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	// One key pair for every service, the coordinator's.
	dashOpts.Keys = s.coord.Keys
	s.metrics = metricstest.Start(t, s.db, metricstest.Options{Quiet: true, Keys: s.coord.Keys,
		Detection: &metricstest.Detection{CoordinatorAddrs: s.coord.Addrs(), Partitions: 4, LockTTL: 2 * time.Second}})
	dashOpts.MetricsAddr, dashOpts.Quiet = s.metrics.Addr, true
	s.dash = dashboardtest.Start(t, s.db, dashOpts)
	s.base = startGateway(t, s.metrics.Addr, s.dash.Addr)
	return s
}

func (s *system) assign(teacher, classroom, name string) {
	s.t.Helper()
	if _, err := s.dash.Client().AssignClassroom(s.ctx, &dashboardv1.AssignClassroomRequest{TeacherId: teacher, ClassroomId: classroom, DisplayName: name}); err != nil {
		s.t.Fatal(err)
	}
}

type restEvent struct {
	EventID     string `json:"event_id"`
	AppID       string `json:"app_id"`
	ClassroomID string `json:"classroom_id"`
	StudentID   string `json:"student_id"`
	ItemID      string `json:"item_id,omitempty"`
	Kind        string `json:"kind"`
	Correct     *bool  `json:"correct,omitempty"`
	X           *int   `json:"x,omitempty"`
	Y           *int   `json:"y,omitempty"`
	OccurredAt  string `json:"occurred_at"`
}

// rageClick is three clicks 0.3 s apart on one spot, ending now.
func (s *system) rageClick(classroom, student string) []restEvent {
	now := time.Now()
	x := 200
	var evs []restEvent
	for i := range 3 {
		evs = append(evs, restEvent{EventID: fmt.Sprintf("rc-%d", s.seq.Add(1)), AppID: "fractions-app", ClassroomID: classroom, StudentID: student,
			ItemID: "fractions-3", Kind: "EVENT_KIND_CLICK", X: &x, Y: &x, OccurredAt: now.Add(time.Duration(i-2) * 300 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	}
	return evs
}

// post sends events to POST /v1/metrics through the gateway and fails the
// test unless every one is accepted.
func (s *system) post(events []restEvent) {
	s.t.Helper()
	if err := s.postEvents(s.ctx, events); err != nil {
		s.t.Fatal(err)
	}
}

// postEvents sends events to POST /v1/metrics as the admin and reports an
// error unless every one is accepted; an exchange the document does not allow
// fails the test or benchmark that started the system. Safe from several
// goroutines.
func (s *system) postEvents(ctx context.Context, events []restEvent) error {
	body, _ := json.Marshal(map[string]any{"events": events})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/metrics", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.coord.AdminToken)
	resp, err := s.rest.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Accepted int `json:"accepted"`
		Rejected []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Accepted != len(events) {
		return fmt.Errorf("POST /v1/metrics: status %d, accepted %d of %d (%v) %v", resp.StatusCode, out.Accepted, len(events), out.Rejected, err)
	}
	return nil
}

// alerts lists a teacher's alerts.
func (s *system) alerts(teacher string) []*dashboardv1.Alert {
	s.t.Helper()
	var out []*dashboardv1.Alert
	req := &dashboardv1.ListAlertsRequest{TeacherId: teacher, PageSize: 1000}
	for {
		resp, err := s.dash.Client().ListAlerts(s.ctx, req)
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, resp.GetAlerts()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// waitAlerts polls until the teacher has at least n alerts.
func (s *system) waitAlerts(teacher string, n int, within time.Duration) []*dashboardv1.Alert {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := s.alerts(teacher)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("teacher %s has %d alerts after %s, want %d", teacher, len(got), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// warmUp waits until the detector answers: a rage click in a classroom of
// its own becomes an alert.
func (s *system) warmUp() {
	s.t.Helper()
	s.assign("warm-up-teacher", "warm-up-room", "")
	s.post(s.rageClick("warm-up-room", "warm-up-student"))
	s.waitAlerts("warm-up-teacher", 1, 60*time.Second)
}
