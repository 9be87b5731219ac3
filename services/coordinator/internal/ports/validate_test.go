package ports

import (
	"strings"
	"testing"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// TestLengthsCountCharactersNotBytes: label values and activities of
// multi-byte text were refused as too many "characters" at half the limit.
func TestLengthsCountCharactersNotBytes(t *testing.T) {
	e := func(n int) string { return strings.Repeat("é", n) }
	if err := validateLabels("labels", map[string]string{e(maxLabelKeyLen): e(maxLabelValueLen)}); err != nil {
		t.Errorf("label of %d and %d two-byte characters: %v, want accepted", maxLabelKeyLen, maxLabelValueLen, err)
	}
	if err := validateLabels("labels", map[string]string{"k": e(maxLabelValueLen + 1)}); err == nil {
		t.Error("label value one character too long was accepted")
	}
	if err := validateBeat(&coordinatorv1.HeartbeatRequest{Activity: e(maxActivityLen)}); err != nil {
		t.Errorf("activity of %d two-byte characters: %v, want accepted", maxActivityLen, err)
	}
	if err := validateBeat(&coordinatorv1.HeartbeatRequest{Activity: e(maxActivityLen + 1)}); err == nil {
		t.Error("activity one character too long was accepted")
	}
	if err := validateName("name", e(100)); err == nil || strings.Contains(err.Error(), "at most") {
		t.Errorf("name of 100 \"é\": %v, want refused for its letters, not its length", err)
	}
}
