package task

import (
	"errors"
	"testing"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

const fuzzTaskID = "0b9c1c52-0f1e-4d6e-9a83-0f5c1f5b8c0e"

// FuzzParseClaimToken: a claim token is accepted only in the exact form the
// queue issues (String), for its own task, with an attempt of at least one;
// anything else is INVALID_ARGUMENT on claim_token. Accepting another
// spelling of a token would let two different strings fence the same claim.
func FuzzParseClaimToken(f *testing.F) {
	for _, s := range []string{
		fuzzTaskID + ".1", fuzzTaskID + ".12", fuzzTaskID + ".0", fuzzTaskID + ".-1", fuzzTaskID + ".01", fuzzTaskID + ".+1",
		fuzzTaskID, fuzzTaskID + ".", "other.1", "", ".", fuzzTaskID + ".1.2", fuzzTaskID + ".9223372036854775808",
	} {
		f.Add(fuzzTaskID, s)
	}
	f.Fuzz(func(t *testing.T, taskID, s string) {
		tok, err := ParseClaimToken(taskID, s)
		if err != nil {
			var de *domainerr.Error
			if !errors.As(err, &de) || de.Kind != domainerr.InvalidArgument || de.Field != "claim_token" {
				t.Fatalf("ParseClaimToken(%q, %q) = %v, want INVALID_ARGUMENT on claim_token", taskID, s, err)
			}
			return
		}
		if tok.TaskID != taskID || tok.Attempt < 1 {
			t.Fatalf("ParseClaimToken(%q, %q) = %+v", taskID, s, tok)
		}
		if tok.String() != s {
			t.Fatalf("ParseClaimToken(%q, %q) accepted a token the queue never issues (it would write %q)", taskID, s, tok.String())
		}
	})
}
