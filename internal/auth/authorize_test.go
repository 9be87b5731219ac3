package auth_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/domainerr"
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
