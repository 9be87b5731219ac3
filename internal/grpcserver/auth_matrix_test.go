package grpcserver_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	_ "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	_ "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	_ "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// assignments is the test's classroom resolver: teacher t1 teaches c1.
type assignments map[string][]string

func (a assignments) TeacherHasClassroom(_ context.Context, teacher, classroom string) (bool, error) {
	for _, c := range a[teacher] {
		if c == classroom {
			return true, nil
		}
	}
	return false, nil
}

// scope values: "home" lies inside the test credentials' scope, "elsewhere"
// outside.
var (
	home      = map[protoreflect.Name]string{"app_id": "a1", "classroom_id": "c1", "classroom_ids": "c1", "teacher_id": "t1", "project": "p1"}
	elsewhere = map[protoreflect.Name]string{"app_id": "a2", "classroom_id": "c2", "classroom_ids": "c2", "teacher_id": "t2", "project": "p2"}
	// which request fields each scoped role is judged on
	judgedOn = map[auth.Role][]protoreflect.Name{
		auth.RoleApp:      {"app_id", "classroom_id", "classroom_ids"},
		auth.RoleTeacher:  {"teacher_id", "classroom_id", "classroom_ids"},
		auth.RoleOperator: {"project"},
	}
)

// matrixServer serves every gaia RPC with one generic handler that reads one
// request and answers an empty response, behind the real interceptors: what
// comes back is the interceptors' verdict (OK = allowed).
func matrixServer(t *testing.T, a *auth.Authorizer) *grpc.ClientConn {
	t.Helper()
	methods := gaiaMethods(t)
	handler := func(_ any, ss grpc.ServerStream) error {
		name, _ := grpc.MethodFromServerStream(ss)
		md, ok := methods[name]
		if !ok {
			return status.Error(codes.Unimplemented, name)
		}
		in := dynamicpb.NewMessage(md.Input())
		if err := ss.RecvMsg(in); err != nil {
			return err
		}
		return ss.SendMsg(dynamicpb.NewMessage(md.Output()))
	}
	srv := grpcserver.New(grpcserver.Options{Name: "matrix", Auth: a, ShutdownTimeout: time.Second}, grpc.UnknownServiceHandler(handler))
	lis := grpctest.Listen(t)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	conn, err := grpcclient.Dial(lis.Addr().String(), grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		stop()
		<-served
	})
	return conn
}

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
	return out
}

// fill sets every scope field of m (and of its nested messages) to values,
// and returns the names it set.
func fill(m protoreflect.Message, values map[protoreflect.Name]string, depth int, set map[protoreflect.Name]bool) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.IsMap() || fd.ContainingOneof() != nil:
		case fd.Kind() == protoreflect.StringKind:
			v, ok := values[fd.Name()]
			if !ok {
				continue
			}
			set[fd.Name()] = true
			if fd.IsList() {
				m.Mutable(fd).List().Append(protoreflect.ValueOfString(v))
			} else {
				m.Set(fd, protoreflect.ValueOfString(v))
			}
		case fd.Kind() == protoreflect.MessageKind && depth < 2 && strings.HasPrefix(string(fd.Message().FullName()), "gaia."):
			if fd.IsList() {
				l := m.Mutable(fd).List()
				e := l.NewElement()
				fill(e.Message(), values, depth+1, set)
				l.Append(e)
			} else {
				fill(m.Mutable(fd).Message(), values, depth+1, set)
			}
		}
	}
}

func call(ctx context.Context, conn *grpc.ClientConn, name string, md protoreflect.MethodDescriptor, req proto.Message) codes.Code {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	desc := &grpc.StreamDesc{StreamName: string(md.Name()), ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer()}
	s, err := conn.NewStream(ctx, desc, name)
	if err != nil {
		return status.Code(err)
	}
	if err := s.SendMsg(req); err != nil && err.Error() != "EOF" {
		return status.Code(err)
	}
	_ = s.CloseSend()
	err = s.RecvMsg(dynamicpb.NewMessage(md.Output()))
	return status.Code(err)
}

// TestPolicyMatrix calls every RPC of every service with every role, with no
// credential, an expired one, a revoked one, one signed by an unknown key,
// and scoped credentials pointed at another app, classroom, teacher or
// project, and checks the verdict against the policy table.
func TestPolicyMatrix(t *testing.T) {
	keys := authtest.New(t)
	a := auth.NewAuthorizer(auth.Options{Verifier: keys.Verifier, Classrooms: assignments{"t1": {"c1"}}, Limits: auth.Limits{Rate: -1}})
	conn := matrixServer(t, a)

	creds := map[auth.Role]string{
		auth.RoleAdmin:    keys.Admin(t),
		auth.RoleOperator: keys.Token(t, auth.Spec{Role: auth.RoleOperator, Projects: []string{"p1"}, TTL: time.Hour}),
		auth.RoleApp:      keys.Token(t, auth.Spec{Role: auth.RoleApp, AppID: "a1", Classrooms: []string{"c1"}, TTL: time.Hour}),
		auth.RoleTeacher:  keys.Token(t, auth.Spec{Role: auth.RoleTeacher, TeacherID: "t1", TTL: time.Hour}),
		auth.RoleService:  keys.Service(t, "taskqueue"),
	}
	bad := map[string]string{
		"expired":     keys.Expired(t),
		"revoked":     keys.Revoked(t),
		"unknown key": authtest.New(t).Admin(t),
		"garbage":     "xyz",
	}

	methods := gaiaMethods(t)
	names := make([]string, 0, len(methods))
	for n := range methods {
		names = append(names, n)
	}
	sort.Strings(names)
	checked := 0
	for _, name := range names {
		md := methods[name]
		pol, _ := auth.Lookup(name)
		homeReq := dynamicpb.NewMessage(md.Input())
		fill(homeReq, home, 0, map[protoreflect.Name]bool{})
		awayReq := dynamicpb.NewMessage(md.Input())
		awaySet := map[protoreflect.Name]bool{}
		fill(awayReq, elsewhere, 0, awaySet)

		expect := func(label, token string, req proto.Message, want codes.Code) {
			ctx := context.Background()
			if token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
			}
			if got := call(ctx, conn, name, md, req); got != want {
				t.Errorf("%s with %s: %v, want %v", name, label, got, want)
			}
			checked++
		}

		// No credential: only session RPCs get through (their handler then
		// checks the session token in the request).
		if pol.Allows(auth.RoleSession) {
			expect("no credential", "", homeReq, codes.OK)
		} else {
			expect("no credential", "", homeReq, codes.Unauthenticated)
		}
		for label, tok := range bad {
			expect(label+" credential", tok, homeReq, codes.Unauthenticated)
		}
		for _, role := range auth.IssuableRoles {
			want := codes.PermissionDenied
			if pol.Allows(role) {
				want = codes.OK
			}
			expect(string(role)+" credential, in scope", creds[role], homeReq, want)

			fields, scoped := judgedOn[role]
			if !scoped || !pol.Allows(role) {
				continue
			}
			want = codes.OK
			for _, f := range fields {
				if awaySet[f] && pol.Scope == auth.ScopeRequest {
					want = codes.PermissionDenied
				}
			}
			expect(string(role)+" credential, scoped elsewhere", creds[role], awayReq, want)
		}
	}
	t.Logf("%d RPCs, %d calls checked", len(names), checked)
}

// The unary interceptor path (registered services, not the generic handler)
// applies the same table: the attack, AddVoter without an admin
// credential, is refused before the handler runs.
func TestAddVoterWithoutAdminCredentialIsRefused(t *testing.T) {
	keys := authtest.New(t)
	a := auth.NewAuthorizer(auth.Options{Verifier: keys.Verifier, Limits: auth.Limits{Rate: -1}})
	core, logs := observer.New(zapcore.InfoLevel)
	srv := grpcserver.New(grpcserver.Options{Name: "coordinator", Auth: a, Logger: zap.New(core), ShutdownTimeout: time.Second})
	coordinatorv1.RegisterClusterServiceServer(srv.GRPC(), coordinatorv1.UnimplementedClusterServiceServer{})
	lis := grpctest.Listen(t)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { stop(); <-served })
	conn, err := grpcclient.Dial(lis.Addr().String(), grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coordinatorv1.NewClusterServiceClient(conn)
	req := &coordinatorv1.AddVoterRequest{NodeId: "made-up", RaftAddress: "10.9.9.9:8300"}
	for _, tt := range []struct {
		label string
		token string
		want  codes.Code
	}{
		{"no credential", "", codes.Unauthenticated},
		{"operator", keys.Token(t, auth.Spec{Role: auth.RoleOperator, Name: "ops", TTL: time.Hour}), codes.PermissionDenied},
		{"service", keys.Service(t, "taskqueue"), codes.PermissionDenied},
		{"expired admin", keys.Expired(t), codes.Unauthenticated},
		// The handler is Unimplemented here: reaching it means allowed.
		{"admin", keys.Admin(t), codes.Unimplemented},
	} {
		cctx := context.Background()
		if tt.token != "" {
			cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+tt.token)
		}
		_, err := client.AddVoter(cctx, req)
		if got := status.Code(err); got != tt.want {
			t.Errorf("AddVoter with %s: %v (%v), want %v", tt.label, got, err, tt.want)
		}
	}
	// Every attempt is audited, refused ones included, with who made it.
	audits := logs.FilterMessage("audit").All()
	if len(audits) != 5 {
		t.Fatalf("%d audit lines, want 5", len(audits))
	}
	whos := []string{}
	for _, e := range audits {
		whos = append(whos, fmt.Sprint(e.ContextMap()["who"], "/", e.ContextMap()["code"]))
	}
	want := "unauthenticated/Unauthenticated operator:ops/PermissionDenied service:taskqueue/PermissionDenied unauthenticated/Unauthenticated admin:test-admin/Unimplemented"
	if strings.Join(whos, " ") != want {
		t.Fatalf("audit lines: %v\nwant %v", strings.Join(whos, " "), want)
	}
}

func TestRateLimitPerCredential(t *testing.T) {
	keys := authtest.New(t)
	a := auth.NewAuthorizer(auth.Options{Verifier: keys.Verifier, Limits: auth.Limits{Rate: 0.5, Burst: 2}})
	conn := matrixServer(t, a)
	const method = "/gaia.coordinator.v1.ClusterService/GetClusterStatus"
	md := gaiaMethods(t)[method]
	first, second := keys.Admin(t), keys.Admin(t)
	with := func(tok string) (codes.Code, metadata.MD) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		var hdr metadata.MD
		err := conn.Invoke(ctx, method, dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output()), grpc.Header(&hdr))
		return status.Code(err), hdr
	}
	for i := range 2 {
		if code, _ := with(first); code != codes.OK {
			t.Fatalf("call %d within the burst: %v", i, code)
		}
	}
	code, hdr := with(first)
	if code != codes.ResourceExhausted {
		t.Fatalf("call past the burst: %v, want ResourceExhausted", code)
	}
	if got := hdr.Get(grpcserver.RetryAfterHeader); len(got) != 1 || got[0] != "2" {
		t.Fatalf("retry-after = %v, want [2] (one token every 2 s)", got)
	}
	// Another credential has its own bucket.
	if code, _ := with(second); code != codes.OK {
		t.Fatalf("another credential: %v, want OK", code)
	}
}
