package service_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// TestRecordMetricsPartialSuccess: each bad event comes back with its index,
// field and reason; every good one is stored.
func TestRecordMetricsPartialSuccess(t *testing.T) {
	e := newEnv(t, metricstest.Options{Retention: 48 * time.Hour})
	now := time.Now()
	good := func(id string) *metricsv1.UsabilityEvent {
		return event(id, "room-1", "s-1", metricsv1.EventKind_EVENT_KIND_HINT, now)
	}
	bad := []struct {
		name   string
		mutate func(*metricsv1.UsabilityEvent)
		field  string
		reason string
	}{
		{"no event id", func(ev *metricsv1.UsabilityEvent) { ev.EventId = "" }, "event_id", "must not be empty"},
		{"long event id", func(ev *metricsv1.UsabilityEvent) { ev.EventId = strings.Repeat("x", 129) }, "event_id", "at most 128"},
		{"unprintable id", func(ev *metricsv1.UsabilityEvent) { ev.StudentId = "s\x01" }, "student_id", "printable"},
		{"no app", func(ev *metricsv1.UsabilityEvent) { ev.AppId = "" }, "app_id", "must not be empty"},
		{"no classroom", func(ev *metricsv1.UsabilityEvent) { ev.ClassroomId = "" }, "classroom_id", "must not be empty"},
		{"no kind", func(ev *metricsv1.UsabilityEvent) { ev.Kind = 0 }, "kind", "must be set"},
		{"unknown kind", func(ev *metricsv1.UsabilityEvent) { ev.Kind = 99 }, "kind", "must be set"},
		{"correct on a click", func(ev *metricsv1.UsabilityEvent) {
			ev.Kind, ev.Correct = metricsv1.EventKind_EVENT_KIND_CLICK, proto.Bool(true)
		}, "correct", "only allowed on attempts"},
		{"attempt without correct", func(ev *metricsv1.UsabilityEvent) { ev.Kind = metricsv1.EventKind_EVENT_KIND_ATTEMPT }, "correct", "must be set"},
		{"x on a hint", func(ev *metricsv1.UsabilityEvent) { ev.X = proto.Int32(3) }, "x", "only allowed on clicks"},
		{"y on an attempt", func(ev *metricsv1.UsabilityEvent) {
			ev.Kind, ev.Correct, ev.Y = metricsv1.EventKind_EVENT_KIND_ATTEMPT, proto.Bool(false), proto.Int32(3)
		}, "y", "only allowed on clicks"},
		{"no time", func(ev *metricsv1.UsabilityEvent) { ev.OccurredAt = nil }, "occurred_at", "must be set"},
		{"from the future", func(ev *metricsv1.UsabilityEvent) { ev.OccurredAt = timestamppb.New(now.Add(6 * time.Minute)) }, "occurred_at", "ahead"},
		{"older than the retention", func(ev *metricsv1.UsabilityEvent) { ev.OccurredAt = timestamppb.New(now.Add(-49 * time.Hour)) }, "occurred_at", "retention"},
		{"too many attrs", func(ev *metricsv1.UsabilityEvent) {
			ev.Attrs = map[string]string{}
			for _, k := range ids("k", 33) {
				ev.Attrs[k] = "v"
			}
		}, "attrs", "at most 32"},
		{"long attr value", func(ev *metricsv1.UsabilityEvent) { ev.Attrs = map[string]string{"k": strings.Repeat("v", 513)} }, "attrs[k]", "at most 512"},
		{"negative hesitation", func(ev *metricsv1.UsabilityEvent) { ev.Kind, ev.Value = metricsv1.EventKind_EVENT_KIND_HESITATION, -1 }, "value", "negative"},
	}
	req := &metricsv1.RecordMetricsRequest{}
	for i, b := range bad {
		req.Events = append(req.Events, good(ids("good", len(bad))[i]))
		ev := good(ids("bad", len(bad))[i])
		b.mutate(ev)
		req.Events = append(req.Events, ev)
	}
	resp, err := e.cli.RecordMetrics(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Accepted != int32(len(bad)) || resp.Duplicates != 0 || len(resp.Rejected) != len(bad) {
		t.Fatalf("accepted %d, duplicates %d, rejected %d; want %d, 0, %d: %v", resp.Accepted, resp.Duplicates, len(resp.Rejected), len(bad), len(bad), resp.Rejected)
	}
	for i, b := range bad {
		r := resp.Rejected[i]
		wantField := "events[" + strconv.Itoa(2*i+1) + "]." + b.field
		if int(r.Index) != 2*i+1 || r.Field != wantField || !strings.Contains(r.Reason, b.reason) {
			t.Errorf("%s: rejected %+v; want index %d, field %s, reason containing %q", b.name, r, 2*i+1, wantField, b.reason)
		}
	}
	if n := storedCount(t, e.pool(t), `WHERE event_id LIKE 'good-%'`); n != len(bad) {
		t.Errorf("%d good events stored, want %d", n, len(bad))
	}
	if n := storedCount(t, e.pool(t), `WHERE event_id NOT LIKE 'good-%'`); n != 0 {
		t.Errorf("%d bad events stored, want 0", n)
	}
}

// TestRecordMetricsAllRejected: a batch of which nothing could be stored is
// INVALID_ARGUMENT naming the first field at fault.
func TestRecordMetricsAllRejected(t *testing.T) {
	e := newEnv(t, metricstest.Options{})
	ev := event("e1", "room-1", "s-1", 42, time.Now())
	_, err := e.cli.RecordMetrics(e.ctx, &metricsv1.RecordMetricsRequest{Events: []*metricsv1.UsabilityEvent{ev}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "events[0].kind") {
		t.Fatalf("got %v, want INVALID_ARGUMENT naming events[0].kind", err)
	}
	_, err = e.cli.RecordMetrics(e.ctx, &metricsv1.RecordMetricsRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "events") {
		t.Fatalf("empty batch: got %v, want INVALID_ARGUMENT naming events", err)
	}
}

// TestRecordMetricsMaxBatch: a batch over USABILITY_MAX_BATCH is refused whole.
func TestRecordMetricsMaxBatch(t *testing.T) {
	e := newEnv(t, metricstest.Options{MaxBatch: 3})
	req := &metricsv1.RecordMetricsRequest{}
	for _, id := range ids("e", 4) {
		req.Events = append(req.Events, event(id, "room-1", "s-1", metricsv1.EventKind_EVENT_KIND_HINT, time.Now()))
	}
	_, err := e.cli.RecordMetrics(e.ctx, req)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 3") {
		t.Fatalf("got %v, want INVALID_ARGUMENT: at most 3 events", err)
	}
	if n := storedCount(t, e.pool(t), ``); n != 0 {
		t.Fatalf("%d events stored, want 0", n)
	}
}

// TestRecordMetricsDisabled: USABILITY_METRICS_ENABLED=false answers
// FAILED_PRECONDITION and stores nothing.
func TestRecordMetricsDisabled(t *testing.T) {
	e := newEnv(t, metricstest.Options{Disabled: true})
	_, err := e.cli.RecordMetrics(e.ctx, &metricsv1.RecordMetricsRequest{Events: []*metricsv1.UsabilityEvent{
		event("e1", "room-1", "s-1", metricsv1.EventKind_EVENT_KIND_HINT, time.Now())}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "USABILITY_METRICS_ENABLED") {
		t.Fatalf("got %v, want FAILED_PRECONDITION naming USABILITY_METRICS_ENABLED", err)
	}
	_, err = e.cli.SubmitRating(e.ctx, &metricsv1.SubmitRatingRequest{StudentId: "s", ClassroomId: "c", AppId: "a", Rating: 3})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("rating: got %v, want FAILED_PRECONDITION", err)
	}
	if n := storedCount(t, e.pool(t), ``); n != 0 {
		t.Fatalf("%d events stored, want 0", n)
	}
}
