package service_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/pgtest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// A credential revoked in the coordinator is refused by the dashboard
// within 10 s: the service polls the revocation list (AUTH_REVOCATION_POLL,
// 2 s) with its own service credential.
func TestRevocationReachesTheDashboardWithin10s(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	dash := dashboardtest.Start(t, pgtest.NewDatabase(t), dashboardtest.Options{
		Quiet: true, Keys: c.Keys, CoordinatorAddr: c.Nodes[0].GRPCAddr, MetricsAddr: dashboardtest.StartFeed(t).Addr})
	if _, err := dash.Client().AssignClassroom(ctx, &dashboardv1.AssignClassroomRequest{TeacherId: "t-42", ClassroomId: "5b", DisplayName: "5b"}); err != nil {
		t.Fatal(err)
	}

	issued, err := c.Client().Auth().IssueCredential(ctx, &coordinatorv1.IssueCredentialRequest{
		Role: coordinatorv1.Role_ROLE_TEACHER, Name: "Ms Rivera", TeacherId: "t-42", Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcclient.Dial(dash.Addr, grpcclient.WithBearer(issued.GetToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	teacher := dashboardv1.NewDashboardServiceClient(conn)
	req := &dashboardv1.ListTeacherClassroomsRequest{TeacherId: "t-42"}
	if resp, err := teacher.ListTeacherClassrooms(ctx, req); err != nil || len(resp.GetAssignments()) != 1 {
		t.Fatalf("ListTeacherClassrooms with the teacher credential before revocation: %v, %v", resp, err)
	}

	revoked := time.Now()
	if _, err := c.Client().Auth().RevokeCredential(ctx, &coordinatorv1.RevokeCredentialRequest{CredentialId: issued.GetCredential().GetCredentialId()}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := teacher.ListTeacherClassrooms(ctx, req)
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if time.Since(revoked) > 10*time.Second {
			t.Fatalf("the dashboard still accepts a credential revoked 10 s ago (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the dashboard refused the revoked credential %v after RevokeCredential", time.Since(revoked).Round(time.Millisecond))
}
