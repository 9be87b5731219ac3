// Package ports is the dashboard service's gRPC surface: handlers validate requests,
// convert between protobuf and the app's types, call one use case and return its
// errors for the shared interceptor to map. No SQL and no business rules here.
package ports

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/reqfield"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/internal/app"
	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

// Reasons in the ErrorInfo detail of a subscription the server ended; its
// metadata carries "after_alert_id", where the client resumes.
const (
	ReasonSubscriberTooSlow = "SUBSCRIBER_TOO_SLOW"
	ReasonShuttingDown      = "SHUTTING_DOWN"
)

// DashboardServer serves gaia.dashboard.v1.DashboardService.
type DashboardServer struct {
	dashboardv1.UnimplementedDashboardServiceServer
	Dashboard *app.Dashboard
	// MaxReplyBytes bounds every reply (GRPC_MAX_REPLY_BYTES); 0 is
	// grpcserver.DefaultMaxReplyBytes.
	MaxReplyBytes int
}

// maxClassrooms bounds classroom_ids in one request.
const maxClassrooms = 100

func classroomIDs(ids []string) error {
	if len(ids) > maxClassrooms {
		return domainerr.Invalid("classroom_ids", "at most 100 classrooms")
	}
	for _, id := range ids {
		if err := alert.ValidateID("classroom_ids", id); err != nil {
			return err
		}
	}
	return nil
}

func minSeverity(s metricsv1.Severity) (alert.Severity, error) {
	if s < 0 || s > metricsv1.Severity_SEVERITY_CRITICAL {
		return 0, domainerr.Invalid("min_severity", "must be a known severity")
	}
	return alert.Severity(s), nil
}

func alertID(id uint64) error {
	if id == 0 {
		return domainerr.Invalid("alert_id", "must be set")
	}
	return nil
}

// SubscribeAlerts streams a teacher's alerts.
func (s *DashboardServer) SubscribeAlerts(req *dashboardv1.SubscribeAlertsRequest, stream dashboardv1.DashboardService_SubscribeAlertsServer) error {
	if err := alert.ValidateID("teacher_id", req.GetTeacherId()); err != nil {
		return err
	}
	if err := classroomIDs(req.GetClassroomIds()); err != nil {
		return err
	}
	sev, err := minSeverity(req.GetMinSeverity())
	if err != nil {
		return err
	}
	err = s.Dashboard.Subscribe(stream.Context(), req.GetTeacherId(), req.GetClassroomIds(), req.GetAfterAlertId(), sev, app.Subscriber{
		Registered: func() error { return stream.SendHeader(metadata.MD{}) },
		Send: func(a *alert.Alert) error {
			return stream.Send(&dashboardv1.SubscribeAlertsResponse{Alert: alertToProto(*a)})
		},
		Heartbeat: func() error {
			return stream.Send(&dashboardv1.SubscribeAlertsResponse{Heartbeat: &dashboardv1.Heartbeat{SentAt: timestamppb.Now()}})
		},
	})
	return subscriptionEnd(err)
}

// subscriptionEnd turns the hub's "resume from here" errors into statuses
// whose ErrorInfo says where to resume.
func subscriptionEnd(err error) error {
	var code codes.Code
	var reason string
	var after uint64
	if e, ok := errors.AsType[*app.TooSlowError](err); ok {
		code, reason, after = codes.ResourceExhausted, ReasonSubscriberTooSlow, e.AfterID
	} else if e, ok := errors.AsType[*app.ShutdownError](err); ok {
		code, reason, after = codes.Unavailable, ReasonShuttingDown, e.AfterID
	} else {
		return err
	}
	st := status.New(code, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: grpcserver.ErrorDomain,
		Metadata: map[string]string{"after_alert_id": strconv.FormatUint(after, 10)}}); derr == nil {
		st = d
	}
	return st.Err()
}

// ListAlerts lists a teacher's alerts, newest first.
func (s *DashboardServer) ListAlerts(ctx context.Context, req *dashboardv1.ListAlertsRequest) (*dashboardv1.ListAlertsResponse, error) {
	if err := alert.ValidateID("teacher_id", req.GetTeacherId()); err != nil {
		return nil, err
	}
	if err := classroomIDs(req.GetClassroomIds()); err != nil {
		return nil, err
	}
	f := alert.Filter{Classrooms: req.GetClassroomIds(), StudentID: req.GetStudentId()}
	var err error
	if f.MinSeverity, err = minSeverity(req.GetMinSeverity()); err != nil {
		return nil, err
	}
	if f.StudentID != "" {
		if err := alert.ValidateID("student_id", f.StudentID); err != nil {
			return nil, err
		}
	}
	for _, st := range req.GetStates() {
		state, ok := states[st]
		if !ok {
			return nil, domainerr.Invalid("states", "must be OPEN, ACKNOWLEDGED or RESOLVED")
		}
		f.States = append(f.States, state)
	}
	if f.Limit, err = reqfield.PageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	if parts, err := reqfield.ParsePageToken(req.GetPageToken(), 2); err != nil {
		return nil, err
	} else if parts != nil {
		if parts[0] != "alert" {
			return nil, reqfield.BadPageToken()
		}
		if f.BeforeID, err = strconv.ParseUint(parts[1], 10, 64); err != nil || f.BeforeID == 0 {
			return nil, reqfield.BadPageToken()
		}
	}
	f.Limit++
	alerts, err := s.Dashboard.ListAlerts(ctx, req.GetTeacherId(), f)
	if err != nil {
		return nil, err
	}
	resp := &dashboardv1.ListAlertsResponse{}
	more := len(alerts) == f.Limit
	if more {
		alerts = alerts[:f.Limit-1]
	}
	// An alert carries its interventions' notes: a page of 1,000 can pass
	// what a client takes, so it also ends at the reply's byte budget.
	budget := grpcserver.NewReplyBudget(s.MaxReplyBytes)
	for _, a := range alerts {
		pa := alertToProto(a)
		if !budget.Add(pa) {
			more = true
			break
		}
		resp.Alerts = append(resp.Alerts, pa)
	}
	if more && len(resp.Alerts) > 0 {
		resp.NextPageToken = reqfield.PageToken("alert", strconv.FormatUint(resp.Alerts[len(resp.Alerts)-1].GetAlertId(), 10))
	}
	return resp, nil
}

// AcknowledgeAlert marks an alert seen.
func (s *DashboardServer) AcknowledgeAlert(ctx context.Context, req *dashboardv1.AcknowledgeAlertRequest) (*dashboardv1.AcknowledgeAlertResponse, error) {
	if err := alertID(req.GetAlertId()); err != nil {
		return nil, err
	}
	if err := alert.ValidateID("teacher_id", req.GetTeacherId()); err != nil {
		return nil, err
	}
	a, err := s.Dashboard.Acknowledge(ctx, req.GetAlertId(), req.GetTeacherId())
	if err != nil {
		return nil, err
	}
	return &dashboardv1.AcknowledgeAlertResponse{Alert: alertToProto(a)}, nil
}

// ResolveAlert closes an alert.
func (s *DashboardServer) ResolveAlert(ctx context.Context, req *dashboardv1.ResolveAlertRequest) (*dashboardv1.ResolveAlertResponse, error) {
	if err := alertID(req.GetAlertId()); err != nil {
		return nil, err
	}
	if err := alert.ValidateID("teacher_id", req.GetTeacherId()); err != nil {
		return nil, err
	}
	if err := alert.ValidateOutcome(alert.Outcome(req.GetOutcome())); err != nil {
		return nil, err
	}
	if err := alert.ValidateNotes("notes", req.GetNotes()); err != nil {
		return nil, err
	}
	a, err := s.Dashboard.Resolve(ctx, req.GetAlertId(), req.GetTeacherId(), alert.Outcome(req.GetOutcome()), req.GetNotes())
	if err != nil {
		return nil, err
	}
	return &dashboardv1.ResolveAlertResponse{Alert: alertToProto(a)}, nil
}

// RecordIntervention records what a teacher did.
func (s *DashboardServer) RecordIntervention(ctx context.Context, req *dashboardv1.RecordInterventionRequest) (*dashboardv1.RecordInterventionResponse, error) {
	if err := alertID(req.GetAlertId()); err != nil {
		return nil, err
	}
	if err := alert.ValidateID("teacher_id", req.GetTeacherId()); err != nil {
		return nil, err
	}
	if err := alert.ValidateAction(alert.Action(req.GetAction())); err != nil {
		return nil, err
	}
	if err := alert.ValidateNotes("notes", req.GetNotes()); err != nil {
		return nil, err
	}
	in, err := s.Dashboard.Intervene(ctx, req.GetAlertId(), req.GetTeacherId(), alert.Action(req.GetAction()), req.GetNotes())
	if err != nil {
		return nil, err
	}
	return &dashboardv1.RecordInterventionResponse{Intervention: interventionToProto(in)}, nil
}

func assignment(teacherID, classroomID string) error {
	if err := alert.ValidateID("teacher_id", teacherID); err != nil {
		return err
	}
	return alert.ValidateID("classroom_id", classroomID)
}

// AssignClassroom gives a teacher a classroom.
func (s *DashboardServer) AssignClassroom(ctx context.Context, req *dashboardv1.AssignClassroomRequest) (*dashboardv1.AssignClassroomResponse, error) {
	if err := assignment(req.GetTeacherId(), req.GetClassroomId()); err != nil {
		return nil, err
	}
	if len(req.GetDisplayName()) > 256 {
		return nil, domainerr.Invalid("display_name", "must be at most 256 bytes")
	}
	if err := alert.ValidateNotes("display_name", req.GetDisplayName()); err != nil {
		return nil, err
	}
	a, err := s.Dashboard.Assign(ctx, alert.Assignment{TeacherID: req.GetTeacherId(), ClassroomID: req.GetClassroomId(), DisplayName: req.GetDisplayName()})
	if err != nil {
		return nil, err
	}
	return &dashboardv1.AssignClassroomResponse{Assignment: assignmentToProto(a)}, nil
}

// UnassignClassroom takes a classroom from a teacher.
func (s *DashboardServer) UnassignClassroom(ctx context.Context, req *dashboardv1.UnassignClassroomRequest) (*dashboardv1.UnassignClassroomResponse, error) {
	if err := assignment(req.GetTeacherId(), req.GetClassroomId()); err != nil {
		return nil, err
	}
	if err := s.Dashboard.Unassign(ctx, req.GetTeacherId(), req.GetClassroomId()); err != nil {
		return nil, err
	}
	return &dashboardv1.UnassignClassroomResponse{}, nil
}

// ListTeacherClassrooms lists a teacher's classrooms.
func (s *DashboardServer) ListTeacherClassrooms(ctx context.Context, req *dashboardv1.ListTeacherClassroomsRequest) (*dashboardv1.ListTeacherClassroomsResponse, error) {
	if err := alert.ValidateID("teacher_id", req.GetTeacherId()); err != nil {
		return nil, err
	}
	as, err := s.Dashboard.TeacherClassrooms(ctx, req.GetTeacherId())
	if err != nil {
		return nil, err
	}
	resp := &dashboardv1.ListTeacherClassroomsResponse{AlertsEnabled: s.Dashboard.AlertsEnabled()}
	for _, a := range as {
		resp.Assignments = append(resp.Assignments, assignmentToProto(a))
	}
	return resp, nil
}

// GetClassroomOverview shows each student's status with its reasons.
func (s *DashboardServer) GetClassroomOverview(ctx context.Context, req *dashboardv1.GetClassroomOverviewRequest) (*dashboardv1.GetClassroomOverviewResponse, error) {
	if err := assignment(req.GetTeacherId(), req.GetClassroomId()); err != nil {
		return nil, err
	}
	ov, err := s.Dashboard.Overview(ctx, req.GetTeacherId(), req.GetClassroomId())
	if err != nil {
		return nil, err
	}
	return overviewToProto(ov, s.Dashboard.AlertsEnabled()), nil
}
