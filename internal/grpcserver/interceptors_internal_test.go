package grpcserver

import (
	"context"
	"testing"

	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestLevelFor(t *testing.T) {
	tests := []struct {
		code codes.Code
		want zapcore.Level
	}{
		{codes.OK, zapcore.DebugLevel},
		{codes.InvalidArgument, zapcore.InfoLevel},
		{codes.NotFound, zapcore.InfoLevel},
		{codes.AlreadyExists, zapcore.InfoLevel},
		{codes.FailedPrecondition, zapcore.InfoLevel},
		{codes.PermissionDenied, zapcore.InfoLevel},
		{codes.Unauthenticated, zapcore.InfoLevel},
		{codes.Canceled, zapcore.InfoLevel},
		{codes.DeadlineExceeded, zapcore.InfoLevel},
		{codes.Aborted, zapcore.InfoLevel},
		{codes.ResourceExhausted, zapcore.InfoLevel},
		{codes.Unimplemented, zapcore.InfoLevel},
		{codes.OutOfRange, zapcore.InfoLevel},
		{codes.Unavailable, zapcore.WarnLevel},
		{codes.Unknown, zapcore.ErrorLevel},
		{codes.Internal, zapcore.ErrorLevel},
		{codes.DataLoss, zapcore.ErrorLevel},
	}
	for _, tt := range tests {
		if got := levelFor(tt.code); got != tt.want {
			t.Errorf("levelFor(%v) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

// A call that reaches the server after the drain began, on a connection
// accepted just before GracefulStop closed the listener, is refused rather
// than started: the window CI once hit, where the handler ran mid-shutdown.
func TestCallsArrivingAfterTheDrainBeganAreRefused(t *testing.T) {
	s := New(Options{Name: "test"})
	s.startDrain()

	ran := false
	_, err := s.refuseUnaryWhenDraining(context.Background(), nil, &grpc.UnaryServerInfo{}, func(context.Context, any) (any, error) {
		ran = true
		return nil, nil
	})
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "server is shutting down" || ran {
		t.Errorf("unary: got %v %q, handler ran %v; want Unavailable \"server is shutting down\" without running it", st.Code(), st.Message(), ran)
	}
	err = s.refuseStreamWhenDraining(nil, nil, &grpc.StreamServerInfo{}, func(any, grpc.ServerStream) error {
		ran = true
		return nil
	})
	if st := status.Convert(err); st.Code() != codes.Unavailable || ran {
		t.Errorf("stream: got %v, handler ran %v; want Unavailable without running it", st.Code(), ran)
	}
}
