package ports

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// TestLengthsCountCharactersNotBytes: a 200-character idempotency key of "é"
// (400 bytes) was refused as "must be at most 256 characters".
func TestLengthsCountCharactersNotBytes(t *testing.T) {
	e := func(n int) string { return strings.Repeat("é", n) }
	if _, err := newTask("", &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: e(maxKeyLen), TaskType: "t"}); err != nil {
		t.Errorf("idempotency key of %d two-byte characters: %v, want accepted", maxKeyLen, err)
	}
	if _, err := newTask("", &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: e(maxKeyLen + 1), TaskType: "t"}); err == nil || !strings.Contains(err.Error(), "256 characters") {
		t.Errorf("idempotency key of %d characters: %v, want refused", maxKeyLen+1, err)
	}
	if _, err := newLesson(&taskqueuev1.CreateLessonRequest{Project: e(128), Name: e(256)}); err != nil {
		t.Errorf("lesson project of 128 and name of 256 two-byte characters: %v, want accepted", err)
	}
	if _, err := newLesson(&taskqueuev1.CreateLessonRequest{Project: "p", Name: e(257)}); err == nil {
		t.Error("lesson name of 257 characters was accepted")
	}
	if _, err := lessonUpdate(&taskqueuev1.UpdateLessonRequest{Name: e(256)}); err != nil {
		t.Errorf("lesson rename to 256 two-byte characters: %v, want accepted", err)
	}
	// Names limited to ASCII say so, not that they are too long.
	if err := validateType("task_type", e(100)); err == nil || strings.Contains(err.Error(), "at most") {
		t.Errorf("task type of 100 \"é\": %v, want refused for its letters, not its length", err)
	}
}

// TestRunAtOfTheZeroTimeIsRefused: a run_at of 0001-01-01T00:00:00Z (a zero
// value sent by mistake) silently meant now.
func TestRunAtOfTheZeroTimeIsRefused(t *testing.T) {
	zero := timestamppb.New(time.Time{})
	_, err := newTask("tasks[3]", &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "k", TaskType: "t", RunAt: zero})
	if domainerr.KindOf(err) != domainerr.InvalidArgument || !strings.Contains(err.Error(), "tasks[3].run_at") || !strings.Contains(err.Error(), "zero time") {
		t.Fatalf("enqueue with run_at 0001-01-01: %v, want INVALID_ARGUMENT naming tasks[3].run_at", err)
	}
	if _, err := (&taskServer{}).RetryTask(context.Background(), &taskqueuev1.RetryTaskRequest{TaskId: "6f1c2b1e-0000-4000-8000-000000000000", RunAt: zero}); domainerr.KindOf(err) != domainerr.InvalidArgument || !strings.Contains(err.Error(), "run_at") {
		t.Fatalf("retry with run_at 0001-01-01: %v, want INVALID_ARGUMENT naming run_at", err)
	}
	for _, ts := range []*timestamppb.Timestamp{nil, timestamppb.New(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))} {
		if _, err := newTask("", &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: "k", TaskType: "t", RunAt: ts}); err != nil {
			t.Errorf("run_at %v: %v, want accepted", ts, err)
		}
	}
}
