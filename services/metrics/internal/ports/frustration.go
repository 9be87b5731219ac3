package ports

import (
	"context"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/reqfield"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// maxFilterClassrooms bounds classroom_ids in a list or watch.
const maxFilterClassrooms = 1000

// checkID accepts 1–128 printable characters (0 when optional).
func checkID(field, v string, required bool) error {
	if v == "" {
		if required {
			return domainerr.Invalid(field, "must not be empty")
		}
		return nil
	}
	if len(v) > 4*usability.MaxIDLen || utf8.RuneCountInString(v) > usability.MaxIDLen || !utf8.ValidString(v) {
		return domainerr.Invalid(field, fmt.Sprintf("must be valid UTF-8 of at most %d characters", usability.MaxIDLen))
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return domainerr.Invalid(field, "must hold only printable characters")
		}
	}
	return nil
}

// classroomFilter checks classroom_ids. The interceptor (internal/auth's
// policy table) already checked each named classroom against the caller's
// credential; what it cannot see is an empty list, which means "all". A
// teacher sees only assigned classrooms, which the interceptor checks one by
// one against the dashboard (auth.ClassroomResolver), so a teacher must name
// its classrooms (never: all of them).
func classroomFilter(ctx context.Context, ids []string) ([]string, error) {
	if p, ok := auth.FromContext(ctx); ok && p.Role == auth.RoleTeacher && len(ids) == 0 {
		return nil, domainerr.Invalid("classroom_ids", "a teacher must name the classrooms to read (those assigned to them)")
	}
	if len(ids) > maxFilterClassrooms {
		return nil, domainerr.Invalid("classroom_ids", fmt.Sprintf("must name at most %d classrooms", maxFilterClassrooms))
	}
	for i, id := range ids {
		if err := checkID("classroom_ids["+strconv.Itoa(i)+"]", id, true); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func severityFilter(s metricsv1.Severity) (detect.Severity, error) {
	if s < 0 || s > metricsv1.Severity_SEVERITY_CRITICAL {
		return 0, domainerr.Invalid("min_severity", "is not a severity")
	}
	return detect.Severity(s), nil
}

// ListFrustrationEvents pages frustration events in id order.
func (s *MetricsServer) ListFrustrationEvents(ctx context.Context, req *metricsv1.ListFrustrationEventsRequest) (*metricsv1.ListFrustrationEventsResponse, error) {
	var f detect.ListFilter
	var err error
	if f.ClassroomIDs, err = classroomFilter(ctx, req.GetClassroomIds()); err != nil {
		return nil, err
	}
	if err := checkID("student_id", req.GetStudentId(), false); err != nil {
		return nil, err
	}
	f.StudentID = req.GetStudentId()
	for i, ind := range req.GetIndicators() {
		if !detect.Indicator(ind).Valid() || ind < 0 {
			return nil, domainerr.Invalid("indicators["+strconv.Itoa(i)+"]", "is not an indicator")
		}
		f.Indicators = append(f.Indicators, detect.Indicator(ind))
	}
	if f.MinSeverity, err = severityFilter(req.GetMinSeverity()); err != nil {
		return nil, err
	}
	f.AfterID = req.GetAfterId()
	if f.From, err = reqfield.Timestamp("start_time", req.GetStartTime()); err != nil {
		return nil, err
	}
	if f.To, err = reqfield.Timestamp("end_time", req.GetEndTime()); err != nil {
		return nil, err
	}
	if f.Limit, err = reqfield.PageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	parts, err := reqfield.ParsePageToken(req.GetPageToken(), 2)
	if err != nil {
		return nil, err
	}
	if parts != nil {
		after, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil || parts[0] != "frustration" {
			return nil, reqfield.BadPageToken()
		}
		f.AfterID = max(f.AfterID, after)
	}
	events, err := s.Frustration.List(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &metricsv1.ListFrustrationEventsResponse{}
	budget := grpcserver.NewReplyBudget(s.MaxReplyBytes)
	for i := range events {
		p := frustrationToProto(&events[i])
		if !budget.Add(p) {
			break
		}
		resp.Events = append(resp.Events, p)
	}
	if n := len(resp.Events); n == f.Limit || n < len(events) {
		resp.NextPageToken = reqfield.PageToken("frustration", strconv.FormatUint(events[n-1].ID, 10))
	}
	return resp, nil
}

// WatchFrustrationEvents streams events after after_id, stored ones first.
func (s *MetricsServer) WatchFrustrationEvents(req *metricsv1.WatchFrustrationEventsRequest, stream metricsv1.MetricsService_WatchFrustrationEventsServer) error {
	var f detect.ListFilter
	var err error
	if f.ClassroomIDs, err = classroomFilter(stream.Context(), req.GetClassroomIds()); err != nil {
		return err
	}
	if f.MinSeverity, err = severityFilter(req.GetMinSeverity()); err != nil {
		return err
	}
	f.AfterID = req.GetAfterId()
	// The interceptor checked the classrooms when the stream opened; a
	// teacher's are checked again before every read, so that an
	// unassignment (seen within the resolver's cache TTL) cuts the stream.
	var allowed func(context.Context) error
	if p, ok := auth.FromContext(stream.Context()); ok && p.Role == auth.RoleTeacher {
		allowed = func(ctx context.Context) error {
			for _, id := range f.ClassroomIDs {
				if err := auth.RequireClassroom(ctx, id); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return s.Frustration.Watch(stream.Context(), f, allowed, func(e detect.FrustrationEvent) error {
		return stream.Send(&metricsv1.WatchFrustrationEventsResponse{Event: frustrationToProto(&e)})
	})
}

func frustrationToProto(e *detect.FrustrationEvent) *metricsv1.FrustrationEvent {
	return &metricsv1.FrustrationEvent{
		EventId: e.ID, ClassroomId: e.ClassroomID, AppId: e.AppID, StudentId: e.StudentID, ItemId: e.ItemID,
		Indicator: metricsv1.Indicator(e.Indicator), Severity: metricsv1.Severity(e.Severity), Reasons: e.Reasons,
		Evidence: e.Evidence, TriggeredAt: timestamppb.New(e.TriggeredAt), DetectedAt: timestamppb.New(e.DetectedAt),
	}
}

// GetDetectionSettings returns a classroom's settings (the defaults when it
// has none).
func (s *MetricsServer) GetDetectionSettings(ctx context.Context, req *metricsv1.GetDetectionSettingsRequest) (*metricsv1.GetDetectionSettingsResponse, error) {
	if err := checkID("classroom_id", req.GetClassroomId(), true); err != nil {
		return nil, err
	}
	st, defaults, err := s.Frustration.GetSettings(ctx, req.GetClassroomId())
	if err != nil {
		return nil, err
	}
	return &metricsv1.GetDetectionSettingsResponse{Settings: settingsToProto(st), Defaults: defaults}, nil
}

// UpdateDetectionSettings changes the fields named in update_mask.
func (s *MetricsServer) UpdateDetectionSettings(ctx context.Context, req *metricsv1.UpdateDetectionSettingsRequest) (*metricsv1.UpdateDetectionSettingsResponse, error) {
	ps := req.GetSettings()
	if ps == nil {
		return nil, domainerr.Invalid("settings", "is required")
	}
	if err := checkID("settings.classroom_id", ps.GetClassroomId(), true); err != nil {
		return nil, err
	}
	in, err := settingsFromProto(ps)
	if err != nil {
		return nil, err
	}
	mask := req.GetUpdateMask().GetPaths()
	if len(mask) > 64 {
		return nil, domainerr.Invalid("update_mask", "must name at most 64 paths")
	}
	st, err := s.Frustration.UpdateSettings(ctx, in, mask)
	if err != nil {
		return nil, err
	}
	return &metricsv1.UpdateDetectionSettingsResponse{Settings: settingsToProto(st)}, nil
}

func settingsFromProto(ps *metricsv1.DetectionSettings) (detect.Settings, error) {
	st := detect.Settings{ClassroomID: ps.GetClassroomId(), Sensitivity: detect.Sensitivity(ps.GetSensitivity())}
	if ps.GetSensitivity() < 0 || ps.GetSensitivity() > metricsv1.Sensitivity_SENSITIVITY_HIGH {
		return st, domainerr.Invalid("settings.sensitivity", "must be low, normal or high")
	}
	for i, ind := range ps.GetDisabledIndicators() {
		if ind < 0 || !detect.Indicator(ind).Valid() {
			return st, domainerr.Invalid("settings.disabled_indicators["+strconv.Itoa(i)+"]", "is not an indicator")
		}
		st.Disabled = append(st.Disabled, detect.Indicator(ind))
	}
	t := ps.GetThresholds()
	dur := func(name string, d *durationpb.Duration) (int64, error) {
		if d == nil {
			return 0, nil
		}
		if err := d.CheckValid(); err != nil {
			return 0, domainerr.Invalid("settings.thresholds."+name, err.Error())
		}
		v := d.AsDuration()
		if v < 0 {
			return 0, domainerr.Invalid("settings.thresholds."+name, "must be longer than 0")
		}
		if v == 0 && (d.GetSeconds() != 0 || d.GetNanos() != 0) {
			return 0, nil
		}
		return int64(v), nil
	}
	o := &st.Overrides
	o.RageClickMinClicks = t.GetRageClickMinClicks()
	o.RageClickMaxDistancePx = t.GetRageClickMaxDistancePx()
	o.StruggleWindowAttempts = t.GetStruggleWindowAttempts()
	o.StruggleMaxCorrect = t.GetStruggleMaxCorrect()
	o.RapidGuessingWindowAttempts = t.GetRapidGuessingWindowAttempts()
	o.RapidGuessingMinGuesses = t.GetRapidGuessingMinGuesses()
	o.WheelSpinningMinAttempts = t.GetWheelSpinningMinAttempts()
	o.ErrorBurstMinErrors = t.GetErrorBurstMinErrors()
	o.KeystrokeThrashMinDeletionRatio = t.GetKeystrokeThrashMinDeletionRatio()
	o.KeystrokeThrashMinKeystrokes = t.GetKeystrokeThrashMinKeystrokes()
	o.LowRatingMaxRating = t.GetLowRatingMaxRating()
	o.HotspotMinFraction = t.GetHotspotMinFraction()
	o.HotspotMinStudents = t.GetHotspotMinStudents()
	for _, d := range []struct {
		name string
		in   *durationpb.Duration
		out  *int64
	}{
		{"rage_click_max_interval", t.GetRageClickMaxInterval(), (*int64)(&o.RageClickMaxInterval)},
		{"rapid_guessing_max_delay", t.GetRapidGuessingMaxDelay(), (*int64)(&o.RapidGuessingMaxDelay)},
		{"error_burst_window", t.GetErrorBurstWindow(), (*int64)(&o.ErrorBurstWindow)},
		{"keystroke_thrash_window", t.GetKeystrokeThrashWindow(), (*int64)(&o.KeystrokeThrashWindow)},
		{"idle_timeout", t.GetIdleTimeout(), (*int64)(&o.IdleTimeout)},
		{"hotspot_window", t.GetHotspotWindow(), (*int64)(&o.HotspotWindow)},
		{"alert_cooldown", t.GetAlertCooldown(), (*int64)(&o.AlertCooldown)},
	} {
		v, err := dur(d.name, d.in)
		if err != nil {
			return st, err
		}
		*d.out = v
	}
	return st, nil
}

// settingsToProto answers with the effective thresholds (preset and
// overrides resolved) and names the explicit ones.
func settingsToProto(st detect.Settings) *metricsv1.DetectionSettings {
	t := st.Effective().Thresholds
	ps := &metricsv1.DetectionSettings{
		ClassroomId: st.ClassroomID,
		Sensitivity: metricsv1.Sensitivity(st.Sensitivity),
		Thresholds: &metricsv1.DetectionThresholds{
			RageClickMinClicks:              t.RageClickMinClicks,
			RageClickMaxInterval:            durationpb.New(t.RageClickMaxInterval),
			RageClickMaxDistancePx:          t.RageClickMaxDistancePx,
			StruggleWindowAttempts:          t.StruggleWindowAttempts,
			StruggleMaxCorrect:              t.StruggleMaxCorrect,
			RapidGuessingWindowAttempts:     t.RapidGuessingWindowAttempts,
			RapidGuessingMinGuesses:         t.RapidGuessingMinGuesses,
			RapidGuessingMaxDelay:           durationpb.New(t.RapidGuessingMaxDelay),
			WheelSpinningMinAttempts:        t.WheelSpinningMinAttempts,
			ErrorBurstMinErrors:             t.ErrorBurstMinErrors,
			ErrorBurstWindow:                durationpb.New(t.ErrorBurstWindow),
			KeystrokeThrashMinDeletionRatio: t.KeystrokeThrashMinDeletionRatio,
			KeystrokeThrashMinKeystrokes:    t.KeystrokeThrashMinKeystrokes,
			KeystrokeThrashWindow:           durationpb.New(t.KeystrokeThrashWindow),
			IdleTimeout:                     durationpb.New(t.IdleTimeout),
			LowRatingMaxRating:              t.LowRatingMaxRating,
			HotspotMinFraction:              t.HotspotMinFraction,
			HotspotMinStudents:              t.HotspotMinStudents,
			HotspotWindow:                   durationpb.New(t.HotspotWindow),
			AlertCooldown:                   durationpb.New(t.AlertCooldown),
		},
		OverriddenThresholds: st.Overrides.SetNames(),
	}
	if !st.UpdatedAt.IsZero() {
		ps.UpdatedAt = timestamppb.New(st.UpdatedAt)
	}
	for _, ind := range st.Disabled {
		ps.DisabledIndicators = append(ps.DisabledIndicators, metricsv1.Indicator(ind))
	}
	return ps
}
