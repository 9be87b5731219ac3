package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// The attack of issue #9: one unauthenticated AddVoter of a made-up node left
// the cluster without a leader for good. Now it is refused on every node,
// with no credential and with any credential but an admin's, and the
// configuration and the leader stay as they were.
func TestAddVoterWithoutAdminCredentialIsRefused(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true})
	leader := c.Leader()
	term := leader.Raft().Stats()["term"]
	fake := &coordinatorv1.AddVoterRequest{NodeId: "made-up", RaftAddress: "127.0.0.1:1", GrpcAddress: "127.0.0.1:2"}
	others := map[string]string{
		"no credential":       "",
		"operator credential": c.Keys.Token(t, auth.Spec{Role: auth.RoleOperator, TTL: time.Hour}),
		"service credential":  c.Keys.Service(t, "taskqueue"),
		"teacher credential":  c.Keys.Token(t, auth.Spec{Role: auth.RoleTeacher, TeacherID: "t1", TTL: time.Hour}),
		"expired admin":       c.Keys.Expired(t),
	}
	for label, tok := range others {
		for _, n := range c.Nodes {
			_, err := c.ClientAs(tok, n).Cluster().AddVoter(ctxT(t, 10*time.Second), fake)
			want := codes.PermissionDenied
			if tok == "" || label == "expired admin" {
				want = codes.Unauthenticated
			}
			if status.Code(err) != want {
				t.Fatalf("AddVoter with %s via %s: %v, want %v", label, n.ID, err, want)
			}
		}
	}
	cfg := leader.Raft().GetConfiguration()
	if err := cfg.Error(); err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Configuration().Servers); n != 3 {
		t.Fatalf("configuration has %d servers, want the 3 it had", n)
	}
	if c.Leader() != leader || leader.Raft().Stats()["term"] != term {
		t.Fatal("the leader changed")
	}
}

// A credential issued through AuthService works on every node; revoked, it
// is refused by every node within 10 s.
func TestRevocationReachesEveryNodeWithin10s(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true})
	admin := c.Client(c.Followers()[0])
	resp, err := admin.Auth().IssueCredential(ctxT(t, 10*time.Second), &coordinatorv1.IssueCredentialRequest{
		Role: coordinatorv1.Role_ROLE_OPERATOR, Name: "ci", Projects: []string{"p1"}, Ttl: durationpb.New(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetCredential().GetCredentialId()
	if resp.GetToken() == "" || id == "" || resp.GetCredential().GetIssuedBy() != "admin:test-admin" {
		t.Fatalf("issued %+v", resp)
	}
	for _, n := range c.Nodes {
		if _, err := c.ClientAs(resp.GetToken(), n).Cluster().GetClusterStatus(ctxT(t, 5*time.Second), &coordinatorv1.GetClusterStatusRequest{}); err != nil {
			t.Fatalf("the new credential on %s: %v", n.ID, err)
		}
	}
	list, err := admin.Auth().ListCredentials(ctxT(t, 5*time.Second), &coordinatorv1.ListCredentialsRequest{})
	if err != nil || len(list.GetCredentials()) != 1 || list.GetCredentials()[0].GetProjects()[0] != "p1" {
		t.Fatalf("ListCredentials = %v, %v", list, err)
	}

	revoked := time.Now()
	if _, err := admin.Auth().RevokeCredential(ctxT(t, 10*time.Second), &coordinatorv1.RevokeCredentialRequest{CredentialId: id}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		cl := c.ClientAs(resp.GetToken(), n)
		for {
			_, err := cl.Cluster().GetClusterStatus(ctxT(t, 5*time.Second), &coordinatorv1.GetClusterStatusRequest{})
			if status.Code(err) == codes.Unauthenticated {
				break
			}
			if time.Since(revoked) > 10*time.Second {
				t.Fatalf("%s still accepts the revoked credential after 10 s (%v)", n.ID, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("revocation refused on every node %v after RevokeCredential", time.Since(revoked).Round(time.Millisecond))

	if _, err := admin.Auth().RevokeCredential(ctxT(t, 5*time.Second), &coordinatorv1.RevokeCredentialRequest{CredentialId: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("revoking an unknown id: %v, want NotFound", err)
	}
	if _, err := admin.Auth().IssueCredential(ctxT(t, 5*time.Second), &coordinatorv1.IssueCredentialRequest{Role: coordinatorv1.Role_ROLE_TEACHER}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a teacher credential without teacher_id: %v, want InvalidArgument", err)
	}
}

// Caps per session (locks held, label bytes) and per join secret (live
// sessions) answer RESOURCE_EXHAUSTED or INVALID_ARGUMENT, never grow.
func TestSessionCaps(t *testing.T) {
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true, MaxLocksPerSession: 2, MaxLiveSessions: 2})
	cl := c.ClientAs("")
	s, tok := register(t, cl, "capped")
	for i := range 2 {
		if _, err := acquire(ctxT(t, 5*time.Second), cl, fmt.Sprintf("cap/%d", i), s.GetSessionId(), tok, time.Minute, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := acquire(ctxT(t, 5*time.Second), cl, "cap/2", s.GetSessionId(), tok, time.Minute, 0); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a third lock: %v, want ResourceExhausted", err)
	}
	if _, err := acquire(ctxT(t, 5*time.Second), cl, "cap/0", s.GetSessionId(), tok, time.Minute, 0); err != nil {
		t.Fatalf("re-acquiring a held lock is not a new one: %v", err)
	}
	big := map[string]string{}
	for i := range 20 {
		big[fmt.Sprintf("k%d", i)] = strings.Repeat("v", 250)
	}
	_, err := cl.Sessions().RegisterSession(ctxT(t, 5*time.Second), &coordinatorv1.RegisterSessionRequest{
		Name: "labels", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, Labels: big})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "SESSION_MAX_LABEL_BYTES") {
		t.Fatalf("5 kB of labels: %v, want InvalidArgument naming SESSION_MAX_LABEL_BYTES", err)
	}
	register(t, cl, "second")
	_, err = cl.Sessions().RegisterSession(ctxT(t, 5*time.Second), &coordinatorv1.RegisterSessionRequest{
		Name: "third", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a third live session: %v, want ResourceExhausted", err)
	}
}
