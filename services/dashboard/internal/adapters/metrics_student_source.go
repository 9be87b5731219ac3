package adapters

import (
	"context"

	"google.golang.org/grpc"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/internal/app"
)

// MaxOverviewStudents bounds the active students one overview reads.
const MaxOverviewStudents = 5000

// MetricsStudentSource lists a classroom's recently active students from the
// metrics service (ListClassroomStudents, its default window of 30 minutes).
type MetricsStudentSource struct {
	client metricsv1.MetricsServiceClient
}

// NewMetricsStudentSource returns a source over a connection to the metrics
// service (the one the follower uses, with the dashboard's credential).
func NewMetricsStudentSource(conn grpc.ClientConnInterface) *MetricsStudentSource {
	return &MetricsStudentSource{client: metricsv1.NewMetricsServiceClient(conn)}
}

var _ app.StudentSource = (*MetricsStudentSource)(nil)

// ActiveStudents pages through the classroom's active students.
func (s *MetricsStudentSource) ActiveStudents(ctx context.Context, classroomID string) ([]app.ActiveStudent, error) {
	var out []app.ActiveStudent
	tok := ""
	for len(out) < MaxOverviewStudents {
		resp, err := s.client.ListClassroomStudents(ctx, &metricsv1.ListClassroomStudentsRequest{ClassroomId: classroomID, PageSize: 1000, PageToken: tok})
		if err != nil {
			return nil, err
		}
		for _, st := range resp.GetStudents() {
			out = append(out, app.ActiveStudent{StudentID: st.GetStudentId(), LastEventAt: st.GetLastEventAt().AsTime(), CurrentItemID: st.GetCurrentItemId()})
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	return out, nil
}
