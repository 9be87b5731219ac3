package grpcserver

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
)

// The interceptor chains, outermost first. Recovery is outermost so a panic
// anywhere, interceptors included, becomes INTERNAL; logging sees the status
// the client will get because error mapping runs inside it; authorization
// runs inside error mapping so that its refusals are mapped like any error.
func (s *Server) unaryInterceptors() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{s.recoverUnary, s.logUnary, s.mapErrorsUnary, s.refuseUnaryWhenDraining, s.authUnary}
}

func (s *Server) streamInterceptors() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{s.recoverStream, s.logStream, s.mapErrorsStream, s.refuseStreamWhenDraining, s.authStream, s.limitStreams, s.cancelStreamOnDrain}
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logPanic(info.FullMethod, r)
			resp, err = nil, status.Error(codes.Internal, internalMessage)
		}
	}()
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logPanic(info.FullMethod, r)
			err = status.Error(codes.Internal, internalMessage)
		}
	}()
	return handler(srv, ss)
}

func (s *Server) logPanic(method string, recovered any) {
	s.log.Error("rpc panicked",
		zap.String("method", method),
		zap.Any("panic", recovered),
		zap.ByteString("stack", debug.Stack()))
}

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.logRPC(info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.logRPC(info.FullMethod, start, err)
	return err
}

func (s *Server) logRPC(method string, start time.Time, err error) {
	st := status.Convert(err)
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", st.Code().String()),
		zap.Duration("duration", time.Since(start)),
	}
	if err != nil {
		fields = append(fields, zap.String("error", st.Message()))
	}
	if ue, ok := errors.AsType[*unexpectedError](err); ok {
		fields = append(fields, zap.NamedError("cause", ue.cause))
	}
	s.log.Log(levelFor(st.Code()), "rpc finished", fields...)
}

// levelFor decides how loudly an RPC outcome is logged: successes only when
// debugging, a client's mistakes as information, transient unavailability
// (a follower redirecting, a server draining) as a warning, and the
// server's own failures as errors.
func levelFor(code codes.Code) zapcore.Level {
	switch code {
	case codes.OK:
		return zapcore.DebugLevel
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.PermissionDenied, codes.Unauthenticated, codes.Canceled, codes.DeadlineExceeded,
		codes.Aborted, codes.ResourceExhausted, codes.Unimplemented, codes.OutOfRange:
		return zapcore.InfoLevel
	case codes.Unavailable:
		return zapcore.WarnLevel
	default: // Unknown, Internal, DataLoss
		return zapcore.ErrorLevel
	}
}

func (s *Server) mapErrorsUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err == nil {
		return resp, nil
	}
	if leader := leaderOf(err); leader != "" {
		// Best effort: the ErrorInfo detail carries the same address.
		_ = grpc.SetTrailer(ctx, metadata.Pairs(grpcclient.LeaderTrailer, leader))
	}
	return nil, mapError(err)
}

func (s *Server) mapErrorsStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	if err == nil {
		return nil
	}
	if leader := leaderOf(err); leader != "" {
		ss.SetTrailer(metadata.Pairs(grpcclient.LeaderTrailer, leader))
	}
	return mapError(err)
}

func mapError(err error) error {
	st, unexpected := toStatus(err)
	if unexpected {
		return &unexpectedError{st: st, cause: err}
	}
	return st.Err()
}

// errShuttingDown is what a client hears from a server that is draining:
// UNAVAILABLE, so it retries on another replica.
var errShuttingDown = status.Error(codes.Unavailable, "server is shutting down")

// refuseUnaryWhenDraining refuses calls that arrive once the drain has
// begun. GracefulStop closes the listener and sends GOAWAY a moment after
// Draining() closes; a call that slips into that window, on a connection
// accepted just before, would otherwise start work on a server that is
// going away.
func (s *Server) refuseUnaryWhenDraining(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.drainCtx.Err() != nil {
		return nil, errShuttingDown
	}
	return handler(ctx, req)
}

// refuseStreamWhenDraining is refuseUnaryWhenDraining for streams.
func (s *Server) refuseStreamWhenDraining(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.drainCtx.Err() != nil {
		return errShuttingDown
	}
	return handler(srv, ss)
}

// cancelStreamOnDrain ends long-lived streams when the server starts to
// drain, which GracefulStop alone would wait on until ShutdownTimeout. The
// handler sees its Context() cancelled; if it returns because of that, the
// client gets UNAVAILABLE so it reconnects to another replica instead of
// treating the stream as finished or cancelled by itself.
//
// A handler blocked in Recv does not see the cancellation (gRPC's Recv does
// not take a context); it ends when ShutdownTimeout closes the connection.
func (s *Server) cancelStreamOnDrain(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	stop := context.AfterFunc(s.drainCtx, cancel)
	defer stop()

	err := handler(srv, &drainableStream{ServerStream: ss, ctx: ctx})
	clientStillThere := ss.Context().Err() == nil
	if err != nil && s.drainCtx.Err() != nil && clientStillThere && isCancellation(err) {
		return errShuttingDown
	}
	return err
}

func isCancellation(err error) bool {
	return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}

// drainableStream is a ServerStream whose context also ends when the server
// drains.
type drainableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *drainableStream) Context() context.Context { return s.ctx }
