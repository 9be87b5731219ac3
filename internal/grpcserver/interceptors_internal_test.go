package grpcserver

import (
	"testing"

	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
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
