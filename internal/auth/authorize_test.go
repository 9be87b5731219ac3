package auth_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/domainerr"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

const addVoter = "/gaia.coordinator.v1.ClusterService/AddVoter"

func TestOffLetsEverythingThroughAsAdmin(t *testing.T) {
	a := auth.NewAuthorizer(auth.Options{Off: true})
	ctx, _, err := a.Authorize(context.Background(), addVoter)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := auth.FromContext(ctx); !ok || p.Role != auth.RoleAdmin {
		t.Fatalf("principal = %+v, %v", p, ok)
	}
}

func TestUnknownMethodIsRefused(t *testing.T) {
	keys := authtest.New(t)
	a := auth.NewAuthorizer(auth.Options{Verifier: keys.Verifier})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+keys.Admin(t)))
	if _, _, err := a.Authorize(ctx, "/gaia.coordinator.v1.ClusterService/DropEverything"); !errors.Is(err, auth.ErrNoPolicy) {
		t.Fatalf("a method without a policy: %v, want ErrNoPolicy even for an admin", err)
	}
}

func TestRequireHelpers(t *testing.T) {
	app := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleApp, AppID: "a1", Classrooms: []string{"c1"}})
	op := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleOperator, Projects: []string{"web"}})
	teacher := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleTeacher, TeacherID: "t1"})
	admin := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleAdmin})
	denied := func(err error) bool { return domainerr.KindOf(err) == domainerr.PermissionDenied }
	for _, tt := range []struct {
		name string
		err  error
		deny bool
	}{
		{"app, own app and classroom", auth.RequireApp(app, "a1", "c1"), false},
		{"app, own app, no classroom", auth.RequireApp(app, "a1", ""), false},
		{"app, other app", auth.RequireApp(app, "a2", "c1"), true},
		{"app, other classroom", auth.RequireApp(app, "a1", "c2"), true},
		{"operator, own project", auth.RequireProject(op, "web"), false},
		{"operator, other project", auth.RequireProject(op, "mobile"), true},
		{"teacher, itself", auth.RequireTeacher(teacher, "t1"), false},
		{"teacher, another", auth.RequireTeacher(teacher, "t2"), true},
		{"teacher, classroom without a resolver", auth.RequireClassroom(teacher, "c1"), true},
		{"admin, anything", auth.RequireApp(admin, "a9", "c9"), false},
	} {
		if got := denied(tt.err); got != tt.deny {
			t.Errorf("%s: %v, want denied=%v", tt.name, tt.err, tt.deny)
		}
	}
}

// A host holds a whole IPv6 /64: session calls from any address in it share
// one bucket, so it cannot take a fresh bucket per call by switching
// addresses; an IPv4 peer written as an IPv4-mapped IPv6 address is the
// same peer.
func TestSessionCallsAreCountedPerIPv4AddressAndIPv6Slash64(t *testing.T) {
	a := auth.NewAuthorizer(auth.Options{Verifier: authtest.New(t).Verifier, Limits: auth.Limits{Rate: 0.001, Burst: 2}})
	const heartbeat = "/gaia.coordinator.v1.SessionService/Heartbeat"
	call := func(addr string) error {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))})
		ctx, pol, err := a.Authorize(ctx, heartbeat)
		if err != nil {
			return err
		}
		return a.CheckRequest(ctx, pol, &coordinatorv1.HeartbeatRequest{SessionId: "s-" + addr})
	}
	limited := func(err error) bool { return domainerr.KindOf(err) == domainerr.ResourceExhausted }
	for _, tt := range []struct {
		name   string
		addrs  []string
		third  string
		refuse bool
	}{
		{"one /64, three addresses", []string{"[2001:db8:1:2::1]:5000", "[2001:db8:1:2:ffff::9]:5001"}, "[2001:db8:1:2:abcd::7]:5002", true},
		{"another /64 has its own bucket", []string{"[2001:db8:9:9::1]:5000", "[2001:db8:9:9::2]:5000"}, "[2001:db8:9:a::1]:5000", false},
		{"IPv4-mapped is the IPv4 peer", []string{"192.0.2.7:5000", "[::ffff:192.0.2.7]:5001"}, "192.0.2.7:5002", true},
		{"another IPv4 address has its own bucket", []string{"192.0.2.8:5000", "192.0.2.8:5001"}, "192.0.2.9:5000", false},
	} {
		for _, addr := range tt.addrs {
			if err := call(addr); err != nil {
				t.Fatalf("%s: %s within the burst: %v", tt.name, addr, err)
			}
		}
		if err := call(tt.third); limited(err) != tt.refuse {
			t.Errorf("%s: the third call, from %s: %v, want refused=%v", tt.name, tt.third, err, tt.refuse)
		}
	}
}
