package ports

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/internal/app"
	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

var states = map[dashboardv1.AlertState]alert.State{
	dashboardv1.AlertState_ALERT_STATE_OPEN:         alert.StateOpen,
	dashboardv1.AlertState_ALERT_STATE_ACKNOWLEDGED: alert.StateAcknowledged,
	dashboardv1.AlertState_ALERT_STATE_RESOLVED:     alert.StateResolved,
}

var stateProtos = map[alert.State]dashboardv1.AlertState{
	alert.StateOpen:         dashboardv1.AlertState_ALERT_STATE_OPEN,
	alert.StateAcknowledged: dashboardv1.AlertState_ALERT_STATE_ACKNOWLEDGED,
	alert.StateResolved:     dashboardv1.AlertState_ALERT_STATE_RESOLVED,
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func alertToProto(a alert.Alert) *dashboardv1.Alert {
	p := &dashboardv1.Alert{
		AlertId: a.ID, FrustrationEventId: a.FrustrationEventID, ClassroomId: a.ClassroomID, AppId: a.AppID,
		StudentId: a.StudentID, ItemId: a.ItemID, Indicator: metricsv1.Indicator(a.Indicator), Severity: metricsv1.Severity(a.Severity),
		Reasons: a.Reasons, State: stateProtos[a.State], CreatedAt: ts(a.CreatedAt), AcknowledgedAt: ts(a.AcknowledgedAt),
		AcknowledgedBy: a.AcknowledgedBy, ResolvedAt: ts(a.ResolvedAt), ResolvedBy: a.ResolvedBy,
		Outcome: dashboardv1.AlertOutcome(a.Outcome), ResolutionNotes: a.ResolutionNotes,
	}
	for _, in := range a.Interventions {
		p.Interventions = append(p.Interventions, interventionToProto(in))
	}
	return p
}

func interventionToProto(in alert.Intervention) *dashboardv1.Intervention {
	return &dashboardv1.Intervention{InterventionId: in.ID, AlertId: in.AlertID, TeacherId: in.TeacherID,
		Action: dashboardv1.InterventionAction(in.Action), Notes: in.Notes, RecordedAt: ts(in.RecordedAt)}
}

func assignmentToProto(a alert.Assignment) *dashboardv1.ClassroomAssignment {
	return &dashboardv1.ClassroomAssignment{TeacherId: a.TeacherID, ClassroomId: a.ClassroomID, DisplayName: a.DisplayName, AssignedAt: ts(a.AssignedAt)}
}

func overviewToProto(ov app.Overview, enabled bool) *dashboardv1.GetClassroomOverviewResponse {
	resp := &dashboardv1.GetClassroomOverviewResponse{ClassroomId: ov.ClassroomID, GeneratedAt: ts(ov.GeneratedAt), AlertsEnabled: enabled}
	for _, st := range ov.Students {
		ps := &dashboardv1.StudentStatus{StudentId: st.StudentID, State: dashboardv1.StudentState(st.State), Reasons: st.Reasons,
			CurrentItemId: st.CurrentItemID, LastEventAt: ts(st.LastEventAt), OpenAlertIds: st.OpenAlertIDs}
		for _, ind := range st.ActiveIndicators {
			ps.ActiveIndicators = append(ps.ActiveIndicators, metricsv1.Indicator(ind))
		}
		resp.Students = append(resp.Students, ps)
	}
	for _, h := range ov.Hotspots {
		resp.Hotspots = append(resp.Hotspots, alertToProto(h))
	}
	return resp
}
