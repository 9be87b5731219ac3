package ports

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
)

// authServer issues and revokes credentials. Who may call it is the policy
// table's business (admin only, ListRevocations for services too).
type authServer struct {
	coordinatorv1.UnimplementedAuthServiceServer
	*Servers
}

var roleFromProto = map[coordinatorv1.Role]auth.Role{
	coordinatorv1.Role_ROLE_ADMIN:    auth.RoleAdmin,
	coordinatorv1.Role_ROLE_OPERATOR: auth.RoleOperator,
	coordinatorv1.Role_ROLE_APP:      auth.RoleApp,
	coordinatorv1.Role_ROLE_TEACHER:  auth.RoleTeacher,
	coordinatorv1.Role_ROLE_SERVICE:  auth.RoleService,
}

func roleToProto(r string) coordinatorv1.Role {
	for p, a := range roleFromProto {
		if string(a) == r {
			return p
		}
	}
	return coordinatorv1.Role_ROLE_UNSPECIFIED
}

func (s *authServer) IssueCredential(ctx context.Context, req *coordinatorv1.IssueCredentialRequest) (*coordinatorv1.IssueCredentialResponse, error) {
	role, ok := roleFromProto[req.GetRole()]
	if !ok {
		return nil, domainerr.Invalid("role", "must be one of ROLE_ADMIN, ROLE_OPERATOR, ROLE_APP, ROLE_TEACHER, ROLE_SERVICE")
	}
	var ttl time.Duration
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, domainerr.Invalid("ttl", "must be a valid duration")
		}
		ttl = req.GetTtl().AsDuration()
	}
	spec := auth.Spec{
		Role: role, Name: req.GetName(), TeacherID: req.GetTeacherId(), AppID: req.GetAppId(),
		Classrooms: req.GetClassroomIds(), Projects: req.GetProjects(), Service: req.GetService(), TTL: ttl,
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.IssueCredentialResponse, error) {
		return coordinatorv1.NewAuthServiceClient(conn).IssueCredential(fctx, req)
	}, func() (*coordinatorv1.IssueCredentialResponse, error) {
		by, _ := auth.FromContext(ctx)
		rec, token, err := s.App.IssueCredential(ctx, spec, by)
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.IssueCredentialResponse{Credential: credentialToProto(rec), Token: token}, nil
	})
}

// ListCredentials answers from the leader, so that a credential just issued
// through any node is listed.
func (s *authServer) ListCredentials(ctx context.Context, req *coordinatorv1.ListCredentialsRequest) (*coordinatorv1.ListCredentialsResponse, error) {
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.ListCredentialsResponse, error) {
		return coordinatorv1.NewAuthServiceClient(conn).ListCredentials(fctx, req)
	}, func() (*coordinatorv1.ListCredentialsResponse, error) {
		recs := s.App.Credentials()
		out := make([]*coordinatorv1.Credential, len(recs))
		for i, r := range recs {
			out[i] = credentialToProto(r)
		}
		return &coordinatorv1.ListCredentialsResponse{Credentials: out}, nil
	})
}

func (s *authServer) RevokeCredential(ctx context.Context, req *coordinatorv1.RevokeCredentialRequest) (*coordinatorv1.RevokeCredentialResponse, error) {
	if req.GetCredentialId() == "" {
		return nil, domainerr.Invalid("credential_id", "must not be empty")
	}
	if reqfield.TooLong(req.GetCredentialId(), 128) {
		return nil, domainerr.Invalid("credential_id", "must be at most 128 characters")
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.RevokeCredentialResponse, error) {
		return coordinatorv1.NewAuthServiceClient(conn).RevokeCredential(fctx, req)
	}, func() (*coordinatorv1.RevokeCredentialResponse, error) {
		by, _ := auth.FromContext(ctx)
		rec, err := s.App.RevokeCredential(ctx, req.GetCredentialId(), by)
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.RevokeCredentialResponse{Credential: credentialToProto(rec)}, nil
	})
}

// ListRevocations answers from this node's replica: a follower lags the
// leader by a replication round trip, far below the poll interval.
func (s *authServer) ListRevocations(_ context.Context, _ *coordinatorv1.ListRevocationsRequest) (*coordinatorv1.ListRevocationsResponse, error) {
	list, idx := s.App.Revocations()
	out := make([]*coordinatorv1.Revocation, len(list))
	for i, r := range list {
		out[i] = &coordinatorv1.Revocation{CredentialId: r.ID, ExpiresAt: timestamppb.New(r.ExpiresAt)}
	}
	return &coordinatorv1.ListRevocationsResponse{Revocations: out, Index: idx}, nil
}

func credentialToProto(c app.Credential) *coordinatorv1.Credential {
	out := &coordinatorv1.Credential{
		CredentialId: c.ID, Role: roleToProto(c.Role), Name: c.Name, TeacherId: c.TeacherID, AppId: c.AppID,
		ClassroomIds: c.Classrooms, Projects: c.Projects, Service: c.Service, KeyId: c.KeyID,
		IssuedAt: timestamp(c.IssuedAt), ExpiresAt: timestamp(c.ExpiresAt), IssuedBy: c.IssuedBy, RevokedBy: c.RevokedBy,
	}
	if c.Revoked() {
		out.RevokedAt = timestamp(c.RevokedAt)
	}
	return out
}
