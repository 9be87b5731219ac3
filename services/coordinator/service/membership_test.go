package service_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// TestRemovingTheLastVoterIsAFailedPrecondition: Raft refuses to remove a
// cluster's only voter, and its error reached the client as INTERNAL.
func TestRemovingTheLastVoterIsAFailedPrecondition(t *testing.T) {
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	_, err := c.Client().Cluster().RemoveServer(ctxT(t, 10*time.Second), &coordinatorv1.RemoveServerRequest{NodeId: c.Nodes[0].ID})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "last voter") {
		t.Fatalf("removing the only voter: %v, want FAILED_PRECONDITION saying it is the last voter", err)
	}
	r, err := c.Client().Cluster().GetClusterStatus(ctxT(t, 5*time.Second), &coordinatorv1.GetClusterStatusRequest{})
	if err != nil || len(r.GetNodes()) != 1 {
		t.Fatalf("cluster after the refusal: %v, %v; want its one node", r.GetNodes(), err)
	}
}

// TestBearerSchemeIsCaseInsensitive: RFC 6750 (by RFC 7235) makes the
// scheme name case-insensitive; a client sending "bearer" or "BEARER" must
// be served like one sending "Bearer".
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	conn := c.ClientAs("", c.Nodes[0]).Cluster() // presents no credential of its own
	for _, scheme := range []string{"bearer", "BEARER", "bEaReR"} {
		ctx := metadata.NewOutgoingContext(ctxT(t, 5*time.Second), metadata.Pairs("authorization", scheme+" "+c.AdminToken))
		if _, err := conn.GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{}); err != nil {
			t.Errorf("%q scheme: %v, want served", scheme, err)
		}
	}
	ctx := metadata.NewOutgoingContext(ctxT(t, 5*time.Second), metadata.Pairs("authorization", "Basic "+c.AdminToken))
	if _, err := conn.GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Basic scheme: %v, want UNAUTHENTICATED", err)
	}
}
