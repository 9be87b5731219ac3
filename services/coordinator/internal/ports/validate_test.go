package ports

import (
	"errors"
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
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

// TestNULAndInvalidUTF8InSessionTextAreRefused: labels and activities with
// "\u0000" or bytes that are not UTF-8 were accepted into the state store.
// They are INVALID_ARGUMENT naming the field now.
func TestNULAndInvalidUTF8InSessionTextAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		err         error
	}{
		{"NUL in a label value", "labels[\"team\"]", validateLabels("labels", map[string]string{"team": "we\x00b"})},
		{"NUL in a label key", "labels", validateLabels("labels", map[string]string{"te\x00am": "web"})},
		{"invalid UTF-8 in a label value", "labels[\"team\"]", validateLabels("labels", map[string]string{"team": "\xff\xfe"})},
		{"NUL in an activity", "activity", validateBeat(&coordinatorv1.HeartbeatRequest{Activity: "reading\x00"})},
		{"NUL in a session id", "session_id", reqfield.SessionRef("s\x00", "t")},
	} {
		var de *domainerr.Error
		if !errors.As(tc.err, &de) || de.Kind != domainerr.InvalidArgument || de.Field != tc.field {
			t.Errorf("%s: %v, want INVALID_ARGUMENT on %s", tc.name, tc.err, tc.field)
		}
	}
}
