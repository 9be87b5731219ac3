package service_test

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// A page of alerts carries their interventions' notes (4 KiB each), and a
// page of 1,000 could pass what a client takes. Scaled down here: a client
// that takes 256 KiB, a budget of 128 KiB, 20 alerts of 20 long notes each.
func TestListAlertsWithLongInterventionNotesEndsThePageAtTheReplyBudget(t *testing.T) {
	const budget, clientLimit = 128 << 10, 256 << 10
	e := newEnv(t, dashboardtest.Options{Quiet: true, MaxReplyBytes: budget})
	e.assign(t, "t1", "room-a")
	const n = 20
	for i := range n {
		e.feed.Append(rageClick("room-a", "s"+strconv.Itoa(i)))
	}
	alerts := e.waitAlerts(t, "t1", n)
	notes := strings.Repeat("n", 4000)
	for _, a := range alerts {
		for range 20 {
			if _, err := e.cli.RecordIntervention(e.ctx, &dashboardv1.RecordInterventionRequest{TeacherId: "t1", AlertId: a.GetAlertId(),
				Action: dashboardv1.InterventionAction_INTERVENTION_ACTION_GAVE_HINT, Notes: notes}); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := map[uint64]bool{}
	tok := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("still paging after %d pages", pages)
		}
		resp, err := e.cli.ListAlerts(e.ctx, &dashboardv1.ListAlertsRequest{TeacherId: "t1", PageSize: 1000, PageToken: tok}, grpc.MaxCallRecvMsgSize(clientLimit))
		if err != nil {
			t.Fatalf("list alerts page %d: %v", pages, err)
		}
		if sz := proto.Size(resp); sz > budget {
			t.Errorf("page %d is %d bytes, over the %d budget", pages, sz, budget)
		}
		for _, a := range resp.GetAlerts() {
			if seen[a.GetAlertId()] {
				t.Errorf("alert %d listed twice", a.GetAlertId())
			}
			seen[a.GetAlertId()] = true
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(seen) != n {
		t.Errorf("the pages hold %d alerts, want %d", len(seen), n)
	}
}
