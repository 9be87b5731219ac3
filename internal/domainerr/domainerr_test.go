package domainerr_test

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

var (
	errTaskNotFound  = domainerr.New(domainerr.NotFound, "task not found")
	errQueueNotFound = domainerr.New(domainerr.NotFound, "queue not found")
)

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *domainerr.Error
		want string
	}{
		{"sentinel", errTaskNotFound, "task not found"},
		{"invalid field", domainerr.Invalid("task.queue", "must not be empty"), "invalid task.queue: must not be empty"},
		{"not leader with address", domainerr.NotLeader("10.0.0.2:8300"), "not the leader; leader is at 10.0.0.2:8300"},
		{"no leader yet", domainerr.NotLeader(""), "no leader elected yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotLeaderCarriesAddress(t *testing.T) {
	tests := []struct {
		addr       string
		wantLeader string
	}{
		{"10.0.0.2:8300", "10.0.0.2:8300"},
		{"", ""},
	}
	for _, tt := range tests {
		e := domainerr.NotLeader(tt.addr)
		if e.Kind != domainerr.Unavailable {
			t.Errorf("NotLeader(%q).Kind = %v, want Unavailable", tt.addr, e.Kind)
		}
		if e.Leader != tt.wantLeader {
			t.Errorf("NotLeader(%q).Leader = %q, want %q", tt.addr, e.Leader, tt.wantLeader)
		}
	}
}

func TestSentinelsSurviveWrapping(t *testing.T) {
	wrapped := fmt.Errorf("claim task 42: %w", fmt.Errorf("load: %w", errTaskNotFound))

	if !errors.Is(wrapped, errTaskNotFound) {
		t.Error("errors.Is(wrapped, errTaskNotFound) = false, want true")
	}
	// Two sentinels of the same kind and shape must stay distinguishable,
	// or a handler checking for one would also catch the other.
	if errors.Is(wrapped, errQueueNotFound) {
		t.Error("errors.Is(wrapped, errQueueNotFound) = true, want false")
	}
	if errors.Is(domainerr.New(domainerr.NotFound, "task not found"), errTaskNotFound) {
		t.Error("a new error with the sentinel's text matched the sentinel; want identity comparison")
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want domainerr.Kind
	}{
		{"nil", nil, 0},
		{"plain error", errors.New("boom"), 0},
		{"sentinel", errTaskNotFound, domainerr.NotFound},
		{"wrapped sentinel", fmt.Errorf("get: %w", errTaskNotFound), domainerr.NotFound},
		{"invalid", domainerr.Invalid("id", "empty"), domainerr.InvalidArgument},
		{"joined", errors.Join(errors.New("other"), domainerr.NotLeader("a:1")), domainerr.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domainerr.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKindCode(t *testing.T) {
	tests := []struct {
		kind domainerr.Kind
		want codes.Code
	}{
		{domainerr.InvalidArgument, codes.InvalidArgument},
		{domainerr.NotFound, codes.NotFound},
		{domainerr.AlreadyExists, codes.AlreadyExists},
		{domainerr.FailedPrecondition, codes.FailedPrecondition},
		{domainerr.PermissionDenied, codes.PermissionDenied},
		{domainerr.Unauthenticated, codes.Unauthenticated},
		{domainerr.Unavailable, codes.Unavailable},
		{domainerr.Aborted, codes.Aborted},
		{domainerr.DeadlineExceeded, codes.DeadlineExceeded},
		{domainerr.ResourceExhausted, codes.ResourceExhausted},
		{domainerr.Unimplemented, codes.Unimplemented},
		// A kind nobody declared is a bug in the caller, never the client's fault.
		{0, codes.Internal},
		{domainerr.Unimplemented + 1, codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			if got := tt.kind.Code(); got != tt.want {
				t.Errorf("Code() = %v, want %v", got, tt.want)
			}
			if got, want := tt.kind.Valid(), tt.want != codes.Internal; got != want {
				t.Errorf("Valid() = %v, want %v", got, want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	if got := domainerr.FailedPrecondition.String(); got != "FailedPrecondition" {
		t.Errorf("String() = %q, want FailedPrecondition", got)
	}
	if got := domainerr.Kind(99).String(); got != "Kind(99)" {
		t.Errorf("String() = %q, want Kind(99)", got)
	}
}
