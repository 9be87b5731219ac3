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
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// A credential revoked in the coordinator is refused by the metrics service
// within 10 s: the service polls the revocation list (AUTH_REVOCATION_POLL,
// 2 s) with its own service credential.
func TestRevocationReachesTheMetricsServiceWithin10s(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	svc := metricstest.Start(t, pgtest.NewDatabase(t), metricstest.Options{Quiet: true, Keys: c.Keys, CoordinatorAddr: c.Nodes[0].GRPCAddr})

	issued, err := c.Client().Auth().IssueCredential(ctx, &coordinatorv1.IssueCredentialRequest{
		Role: coordinatorv1.Role_ROLE_APP, Name: "fractions", AppId: "fractions", Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcclient.Dial(svc.Addr, grpcclient.WithBearer(issued.GetToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	app := metricsv1.NewMetricsServiceClient(conn)
	req := &metricsv1.GetRatingSummaryRequest{AppId: "fractions"}
	if _, err := app.GetRatingSummary(ctx, req); err != nil {
		t.Fatalf("GetRatingSummary with the app credential before revocation: %v", err)
	}

	revoked := time.Now()
	if _, err := c.Client().Auth().RevokeCredential(ctx, &coordinatorv1.RevokeCredentialRequest{CredentialId: issued.GetCredential().GetCredentialId()}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := app.GetRatingSummary(ctx, req)
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if time.Since(revoked) > 10*time.Second {
			t.Fatalf("the metrics service still accepts a credential revoked 10 s ago (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the metrics service refused the revoked credential %v after RevokeCredential", time.Since(revoked).Round(time.Millisecond))
}
