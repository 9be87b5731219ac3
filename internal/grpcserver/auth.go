package grpcserver

import (
	"context"
	"errors"
	"strconv"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/gaia-platform/gaia/internal/auth"
)

// RetryAfterHeader is the response header a rate-limited call carries: whole
// seconds to wait, as HTTP's Retry-After.
const RetryAfterHeader = "retry-after"

// authUnary authenticates the call, applies the method's policy (role, then
// the request's scope) and audits the methods the table marks.
func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.auth == nil {
		return handler(ctx, req)
	}
	actx, pol, err := s.auth.Authorize(ctx, info.FullMethod)
	if err == nil {
		err = s.auth.CheckRequest(actx, pol, req)
	}
	if err != nil {
		setRetryAfter(err, func(md metadata.MD) { _ = grpc.SetHeader(ctx, md) })
		s.audit(actx, info.FullMethod, pol, req, err)
		return nil, err
	}
	resp, err := handler(actx, req)
	s.audit(actx, info.FullMethod, pol, req, err)
	return resp, err
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.auth == nil {
		return handler(srv, ss)
	}
	actx, pol, err := s.auth.Authorize(ss.Context(), info.FullMethod)
	if err != nil {
		setRetryAfter(err, func(md metadata.MD) { _ = ss.SetHeader(md) })
		s.audit(actx, info.FullMethod, pol, nil, err)
		return err
	}
	err = handler(srv, &authorizedStream{ServerStream: ss, ctx: actx, auth: s.auth, pol: pol})
	s.audit(actx, info.FullMethod, pol, nil, err)
	return err
}

// authorizedStream carries the principal and checks the scope of every
// message the client sends.
type authorizedStream struct {
	grpc.ServerStream
	ctx  context.Context
	auth *auth.Authorizer
	pol  auth.Policy
}

func (s *authorizedStream) Context() context.Context { return s.ctx }

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.auth.CheckRequest(s.ctx, s.pol, m)
}

func setRetryAfter(err error, set func(metadata.MD)) {
	if rl, ok := errors.AsType[*auth.RateLimitedError](err); ok {
		set(metadata.Pairs(RetryAfterHeader, strconv.Itoa(rl.RetryAfterSeconds())))
	}
}

// maxAuditRequest bounds how much of a request an audit line quotes.
const maxAuditRequest = 1024

// audit logs an audited method's call, refused ones included, with who made
// it. Responses are never logged: IssueCredential's carries a token.
func (s *Server) audit(ctx context.Context, method string, pol auth.Policy, req any, err error) {
	if !pol.Audit {
		return
	}
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", status.Code(ToStatus(err)).String()),
	}
	if p, ok := auth.FromContext(ctx); ok {
		fields = append(fields, zap.String("who", p.Who()), zap.String("role", string(p.Role)), zap.String("credential_id", p.CredentialID))
	} else {
		fields = append(fields, zap.String("who", "unauthenticated"))
	}
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		fields = append(fields, zap.String("peer", pr.Addr.String()))
	}
	if m, ok := req.(proto.Message); ok {
		b, merr := protojson.Marshal(m)
		if merr == nil {
			if len(b) > maxAuditRequest {
				b = append(b[:maxAuditRequest], "…"...)
			}
			fields = append(fields, zap.ByteString("request", b))
		}
	}
	if err != nil {
		fields = append(fields, zap.String("error", status.Convert(ToStatus(err)).Message()))
	}
	s.auditLog.Info("audit", fields...)
}
