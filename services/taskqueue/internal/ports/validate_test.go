package ports

import (
	"strings"
	"testing"

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
