// Package ports is the metrics service's gRPC surface: handlers validate requests,
// convert between protobuf and the app's types, call one use case and return its
// errors for the shared interceptor to map. No SQL and no business rules here.
package ports

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/reqfield"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/internal/app"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// MetricsServer serves gaia.metrics.v1.MetricsService.
type MetricsServer struct {
	metricsv1.UnimplementedMetricsServiceServer
	Ingest      *app.Ingest
	Ratings     *app.Ratings
	Snapshots   *app.Snapshots
	Frustration *app.Frustration
	// MaxReplyBytes bounds every list reply (GRPC_MAX_REPLY_BYTES); 0 is
	// grpcserver.DefaultMaxReplyBytes.
	MaxReplyBytes int
}

var kinds = map[metricsv1.EventKind]usability.Kind{
	metricsv1.EventKind_EVENT_KIND_ATTEMPT:    usability.KindAttempt,
	metricsv1.EventKind_EVENT_KIND_ERROR:      usability.KindError,
	metricsv1.EventKind_EVENT_KIND_KEYSTROKE:  usability.KindKeystroke,
	metricsv1.EventKind_EVENT_KIND_CLICK:      usability.KindClick,
	metricsv1.EventKind_EVENT_KIND_HINT:       usability.KindHint,
	metricsv1.EventKind_EVENT_KIND_HESITATION: usability.KindHesitation,
	metricsv1.EventKind_EVENT_KIND_FOCUS_LOST: usability.KindFocusLost,
	metricsv1.EventKind_EVENT_KIND_PAGE_VIEW:  usability.KindPageView,
}

// RecordMetrics stores a batch with partial success.
func (s *MetricsServer) RecordMetrics(ctx context.Context, req *metricsv1.RecordMetricsRequest) (*metricsv1.RecordMetricsResponse, error) {
	events := make([]usability.Event, len(req.GetEvents()))
	for i, pe := range req.GetEvents() {
		events[i] = eventFromProto(pe)
	}
	res, err := s.Ingest.Record(ctx, events)
	if err != nil {
		return nil, err
	}
	resp := &metricsv1.RecordMetricsResponse{Accepted: int32(res.Accepted), Duplicates: int32(res.Duplicates)}
	for _, r := range res.Rejected {
		resp.Rejected = append(resp.Rejected, &metricsv1.RejectedEvent{Index: int32(r.Index), EventId: r.EventID, Field: r.Field, Reason: r.Reason})
	}
	return resp, nil
}

func eventFromProto(pe *metricsv1.UsabilityEvent) usability.Event {
	e := usability.Event{
		EventID:     pe.GetEventId(),
		AppID:       pe.GetAppId(),
		ClassroomID: pe.GetClassroomId(),
		StudentID:   pe.GetStudentId(),
		ItemID:      pe.GetItemId(),
		SkillID:     pe.GetSkillId(),
		Kind:        kinds[pe.GetKind()], // "" when unset or unknown: the domain rejects it
		Correct:     pe.Correct,
		Value:       pe.GetValue(),
		X:           pe.X,
		Y:           pe.Y,
		Attrs:       pe.GetAttrs(),
	}
	// An invalid timestamp stays zero and is rejected as unset.
	if ts := pe.GetOccurredAt(); ts != nil && ts.CheckValid() == nil {
		e.OccurredAt = ts.AsTime().Truncate(time.Microsecond)
	}
	return e
}

// SubmitRating stores one rating, idempotent by rating_id.
func (s *MetricsServer) SubmitRating(ctx context.Context, req *metricsv1.SubmitRatingRequest) (*metricsv1.SubmitRatingResponse, error) {
	at, err := reqfield.Timestamp("occurred_at", req.GetOccurredAt())
	if err != nil {
		return nil, err
	}
	r, dup, err := s.Ratings.Submit(ctx, usability.Rating{
		RatingID: req.GetRatingId(), StudentID: req.GetStudentId(), ClassroomID: req.GetClassroomId(), AppID: req.GetAppId(),
		ItemID: req.GetItemId(), Rating: int(req.GetRating()), Feedback: req.GetFeedback(), OccurredAt: at,
	})
	if err != nil {
		return nil, err
	}
	return &metricsv1.SubmitRatingResponse{Duplicate: dup, Rating: &metricsv1.Rating{
		RatingId: r.RatingID, StudentId: r.StudentID, ClassroomId: r.ClassroomID, AppId: r.AppID, ItemId: r.ItemID,
		Rating: int32(r.Rating), Feedback: r.Feedback, OccurredAt: timestamppb.New(r.OccurredAt),
	}}, nil
}

// GetRatingSummary summarises ratings.
func (s *MetricsServer) GetRatingSummary(ctx context.Context, req *metricsv1.GetRatingSummaryRequest) (*metricsv1.GetRatingSummaryResponse, error) {
	f := usability.RatingFilter{ClassroomID: req.GetClassroomId(), AppID: req.GetAppId(), ItemID: req.GetItemId()}
	var err error
	if f.From, err = reqfield.Timestamp("start_time", req.GetStartTime()); err != nil {
		return nil, err
	}
	if f.To, err = reqfield.Timestamp("end_time", req.GetEndTime()); err != nil {
		return nil, err
	}
	for _, id := range []struct{ field, v string }{{"classroom_id", f.ClassroomID}, {"app_id", f.AppID}, {"item_id", f.ItemID}} {
		if len(id.v) > usability.MaxItemLen {
			return nil, domainerr.Invalid(id.field, "is too long")
		}
	}
	sum, f, err := s.Ratings.Summary(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &metricsv1.GetRatingSummaryResponse{Count: sum.Count, Mean: sum.Mean, StartTime: timestamppb.New(f.From), EndTime: timestamppb.New(f.To)}
	for i, n := range sum.Distribution {
		resp.Distribution = append(resp.Distribution, &metricsv1.RatingBucket{Rating: int32(i + 1), Count: n})
	}
	return resp, nil
}

// GetClassroomSnapshot returns one minute's rollup.
func (s *MetricsServer) GetClassroomSnapshot(ctx context.Context, req *metricsv1.GetClassroomSnapshotRequest) (*metricsv1.GetClassroomSnapshotResponse, error) {
	if err := classroomID(req.GetClassroomId()); err != nil {
		return nil, err
	}
	at, err := reqfield.Timestamp("minute", req.GetMinute())
	if err != nil {
		return nil, err
	}
	snap, err := s.Snapshots.Get(ctx, req.GetClassroomId(), at)
	if err != nil {
		return nil, err
	}
	return &metricsv1.GetClassroomSnapshotResponse{Snapshot: snapshotToProto(snap)}, nil
}

// MaxSnapshotPage is the largest page of ListClassroomSnapshots (a day).
const MaxSnapshotPage = 1440

// ListClassroomSnapshots pages a classroom's rollups, oldest first.
func (s *MetricsServer) ListClassroomSnapshots(ctx context.Context, req *metricsv1.ListClassroomSnapshotsRequest) (*metricsv1.ListClassroomSnapshotsResponse, error) {
	if err := classroomID(req.GetClassroomId()); err != nil {
		return nil, err
	}
	from, err := reqfield.Timestamp("start_time", req.GetStartTime())
	if err != nil {
		return nil, err
	}
	to, err := reqfield.Timestamp("end_time", req.GetEndTime())
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = 60
	case size < 0 || size > MaxSnapshotPage:
		return nil, domainerr.Invalid("page_size", "must be between 1 and 1440")
	}
	after, err := decodeMinuteToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	snaps, _, _, err := s.Snapshots.List(ctx, req.GetClassroomId(), from, to, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &metricsv1.ListClassroomSnapshotsResponse{}
	budget := grpcserver.NewReplyBudget(s.MaxReplyBytes)
	for i, sn := range snaps {
		p := snapshotToProto(sn)
		if i == size || !budget.Add(p) {
			resp.NextPageToken = encodeMinuteToken(snaps[i-1].Minute)
			break
		}
		resp.Snapshots = append(resp.Snapshots, p)
	}
	return resp, nil
}

// ListClassroomStudents pages a classroom's recently active students by id.
func (s *MetricsServer) ListClassroomStudents(ctx context.Context, req *metricsv1.ListClassroomStudentsRequest) (*metricsv1.ListClassroomStudentsResponse, error) {
	if err := classroomID(req.GetClassroomId()); err != nil {
		return nil, err
	}
	within, err := reqfield.Duration("active_within", req.GetActiveWithin(), app.DefaultActiveWithin, time.Second, app.MaxActiveWithin)
	if err != nil {
		return nil, err
	}
	size, err := reqfield.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var after string
	parts, err := reqfield.ParsePageToken(req.GetPageToken(), 2)
	if err != nil {
		return nil, err
	}
	if parts != nil {
		if parts[0] != "student" {
			return nil, reqfield.BadPageToken()
		}
		after = parts[1]
	}
	students, err := s.Snapshots.Students(ctx, req.GetClassroomId(), within, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &metricsv1.ListClassroomStudentsResponse{}
	budget := grpcserver.NewReplyBudget(s.MaxReplyBytes)
	for i, st := range students {
		p := &metricsv1.ClassroomStudent{StudentId: st.StudentID, LastEventAt: timestamppb.New(st.LastEventAt),
			Events: st.Events, CurrentItemId: st.CurrentItemID}
		if i == size || !budget.Add(p) {
			resp.NextPageToken = reqfield.PageToken("student", students[i-1].StudentID)
			break
		}
		resp.Students = append(resp.Students, p)
	}
	return resp, nil
}

func classroomID(id string) error {
	switch {
	case id == "":
		return domainerr.Invalid("classroom_id", "must not be empty")
	case reqfield.TooLong(id, usability.MaxIDLen):
		return domainerr.Invalid("classroom_id", "must be at most 128 characters")
	}
	return nil
}

// A snapshot page token is the Unix second of the last minute returned.
func encodeMinuteToken(m time.Time) string {
	return reqfield.PageToken("minute", strconv.FormatInt(m.Unix(), 10))
}

func decodeMinuteToken(tok string) (time.Time, error) {
	parts, err := reqfield.ParsePageToken(tok, 2)
	if err != nil || parts == nil {
		return time.Time{}, err
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || parts[0] != "minute" {
		return time.Time{}, reqfield.BadPageToken()
	}
	return time.Unix(sec, 0).UTC(), nil
}

func snapshotToProto(s usability.Snapshot) *metricsv1.ClassroomSnapshot {
	out := &metricsv1.ClassroomSnapshot{
		ClassroomId:        s.ClassroomID,
		Minute:             timestamppb.New(s.Minute),
		ActiveStudents:     s.ActiveStudents,
		Events:             s.Events,
		ErrorRate:          s.ErrorRate(),
		MeanHesitation:     durationpb.New(s.MeanHesitation),
		FrustratedStudents: s.FrustratedStudents,
	}
	for _, d := range s.HardestItems {
		out.HardestItems = append(out.HardestItems, &metricsv1.ItemDifficulty{ItemId: d.ItemID, Attempts: d.Attempts, Errors: d.Errors, ErrorRate: d.ErrorRate(),
			StrugglingStudents: d.StrugglingStudents})
	}
	return out
}
