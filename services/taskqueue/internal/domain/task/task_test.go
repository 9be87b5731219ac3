package task

import (
	"errors"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

func TestBackoffStaysInTheUpperHalfOfItsDoubling(t *testing.T) {
	for attempt := 1; attempt <= 15; attempt++ {
		// 1 s doubling per attempt, capped at an hour.
		base := min(time.Second<<min(attempt-1, 12), time.Hour)
		lo, hi := base/2, base
		seenLow, seenHigh := false, false
		for range 2000 {
			d := Backoff(attempt)
			if d < lo || d > hi {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", attempt, d, lo, hi)
			}
			// Jitter spreads over the range rather than sitting at one end.
			seenLow = seenLow || d < lo+(hi-lo)/4
			seenHigh = seenHigh || d > hi-(hi-lo)/4
		}
		if !seenLow || !seenHigh {
			t.Errorf("Backoff(%d): 2000 draws never reached both quarters of [%s, %s]", attempt, lo, hi)
		}
	}
	// Attempts before the first are treated as the first.
	if d := Backoff(0); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("Backoff(0) = %s", d)
	}
}

func TestParseClaimToken(t *testing.T) {
	const id = "7f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b"
	good := []struct {
		token   string
		attempt int
	}{
		{id + ".1", 1},
		{id + ".42", 42},
		{ClaimToken{TaskID: id, Attempt: 7}.String(), 7},
	}
	for _, tc := range good {
		tok, err := ParseClaimToken(id, tc.token)
		if err != nil || tok.TaskID != id || tok.Attempt != tc.attempt {
			t.Errorf("ParseClaimToken(%q) = %+v, %v; want attempt %d", tc.token, tok, err, tc.attempt)
		}
		if tok.String() != tc.token {
			t.Errorf("token %q does not round-trip: %q", tc.token, tok.String())
		}
	}
	bad := []string{
		"",
		id,                                       // no attempt
		id + ".",                                 // empty attempt
		id + ".0",                                // attempts start at 1
		id + ".-1",                               // negative
		id + ".x",                                // not a number
		id + ".1.2",                              // trailing part
		"8f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b.1", // another task's token
		".1",                                     // no task
		id + ".99999999999999999999999999999999999", // overflows
	}
	for _, s := range bad {
		_, err := ParseClaimToken(id, s)
		var de *domainerr.Error
		if !errors.As(err, &de) || de.Kind != domainerr.InvalidArgument || de.Field != "claim_token" {
			t.Errorf("ParseClaimToken(%q) = %v, want INVALID_ARGUMENT naming claim_token", s, err)
		}
	}
}
