package adapters

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

// MetricsFrustrationSource follows the metrics service's frustration events.
type MetricsFrustrationSource struct {
	client metricsv1.MetricsServiceClient
}

// NewMetricsFrustrationSource returns a source over a connection to the
// metrics service.
func NewMetricsFrustrationSource(conn grpc.ClientConnInterface) *MetricsFrustrationSource {
	return &MetricsFrustrationSource{client: metricsv1.NewMetricsServiceClient(conn)}
}

// ErrWatchEnded says the metrics service ended the watch without an error;
// the follower reconnects from its checkpoint.
var ErrWatchEnded = errors.New("the metrics service ended the frustration event watch")

// Watch calls fn for every frustration event after afterID, in id order,
// until the stream breaks, fn fails or ctx ends.
func (s *MetricsFrustrationSource) Watch(ctx context.Context, afterID uint64, fn func(alert.Event) error) error {
	stream, err := s.client.WatchFrustrationEvents(ctx, &metricsv1.WatchFrustrationEventsRequest{AfterId: afterID})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return ErrWatchEnded
		}
		if err != nil {
			return err
		}
		if err := fn(EventFromProto(resp.GetEvent())); err != nil {
			return err
		}
	}
}

// EventFromProto converts a metrics frustration event. NUL characters, which
// PostgreSQL text cannot hold, are dropped: one odd event must never stop the
// follower.
func EventFromProto(e *metricsv1.FrustrationEvent) alert.Event {
	ev := alert.Event{
		ID: e.GetEventId(), ClassroomID: noNUL(e.GetClassroomId()), AppID: noNUL(e.GetAppId()), StudentID: noNUL(e.GetStudentId()),
		ItemID: noNUL(e.GetItemId()), Indicator: alert.Indicator(e.GetIndicator()), Severity: alert.Severity(e.GetSeverity()),
	}
	for _, r := range e.GetReasons() {
		ev.Reasons = append(ev.Reasons, noNUL(r))
	}
	if ts := e.GetTriggeredAt(); ts != nil {
		ev.TriggeredAt = ts.AsTime()
	}
	return ev
}

func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }
