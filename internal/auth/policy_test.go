package auth_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/gaia-platform/gaia/internal/auth"
	// Every service's API, so that the registry below knows every RPC.
	_ "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	_ "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	_ "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	_ "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// GAIAMethods is every RPC of every gaia.* service in the proto registry.
func gaiaMethods(t *testing.T) map[string]protoreflect.MethodDescriptor {
	t.Helper()
	out := map[string]protoreflect.MethodDescriptor{}
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(f.Package()), "gaia.") {
			return true
		}
		for i := 0; i < f.Services().Len(); i++ {
			s := f.Services().Get(i)
			for j := 0; j < s.Methods().Len(); j++ {
				m := s.Methods().Get(j)
				out["/"+string(s.FullName())+"/"+string(m.Name())] = m
			}
		}
		return true
	})
	if len(out) < 50 {
		t.Fatalf("found only %d gaia RPCs; is every proto package imported?", len(out))
	}
	return out
}

// A new RPC without a policy entry fails here: decide who may call it in
// internal/auth/policy.go.
func TestEveryRPCHasAPolicy(t *testing.T) {
	for name := range gaiaMethods(t) {
		pol, ok := auth.Lookup(name)
		if !ok {
			t.Errorf("%s has no entry in the policy table (internal/auth/policy.go)", name)
			continue
		}
		if !pol.Public && len(pol.Roles) == 0 {
			t.Errorf("%s: no role may call it; remove the RPC or name its roles", name)
		}
		if pol.Public {
			t.Errorf("%s: a GAIA RPC is never public", name)
		}
		if pol.Scope == auth.ScopeSessionToken && !pol.Allows(auth.RoleSession) {
			t.Errorf("%s: scope session_token without the session role", name)
		}
	}
}

func TestPolicyTableNamesOnlyRealRPCs(t *testing.T) {
	methods := gaiaMethods(t)
	for _, row := range auth.Table() {
		if strings.HasPrefix(row.FullMethod, "/grpc.") {
			continue
		}
		if _, ok := methods[row.FullMethod]; !ok {
			t.Errorf("policy entry %s names no RPC", row.FullMethod)
		}
		for _, r := range row.Roles {
			if _, err := auth.ParseRole(string(r)); err != nil {
				t.Errorf("%s: %v", row.FullMethod, err)
			}
		}
	}
}

// Membership changes and credential management are admin only, whatever
// else changes in the table: the attack of issue #9.
func TestMembershipAndCredentialsAreAdminOnly(t *testing.T) {
	for _, m := range []string{
		"/gaia.coordinator.v1.ClusterService/AddVoter",
		"/gaia.coordinator.v1.ClusterService/RemoveServer",
		"/gaia.coordinator.v1.ClusterService/TransferLeadership",
		"/gaia.coordinator.v1.AuthService/IssueCredential",
		"/gaia.coordinator.v1.AuthService/RevokeCredential",
		"/gaia.coordinator.v1.AuthService/ListCredentials",
	} {
		pol, _ := auth.Lookup(m)
		if len(pol.Roles) != 1 || pol.Roles[0] != auth.RoleAdmin || pol.Public {
			t.Errorf("%s allows %v, want admin only", m, pol.Roles)
		}
	}
}
