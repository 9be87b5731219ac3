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

func TestSessionCanClaim(t *testing.T) {
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		s    Session
		want error
	}{
		{"registered", Session{Status: SessionRegistered}, nil},
		{"active", Session{Status: SessionActive}, nil},
		{"suspect", Session{Status: SessionSuspect}, ErrSessionSuspect},
		{"failed", Session{Status: SessionFailed}, ErrSessionFailed},
		{"deregistered", Session{Status: SessionDeregistered}, ErrSessionFailed},
		{"unhealthy", Session{Status: SessionActive, ConsecutiveFailures: 1}, ErrSessionUnhealthy},
	}
	for _, tt := range tests {
		if err := tt.s.CanClaim(now); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: CanClaim = %v, want %v", tt.name, err, tt.want)
		}
		if ended := tt.s.Status == SessionFailed || tt.s.Status == SessionDeregistered; tt.s.Ended() != ended {
			t.Errorf("%s: Ended = %v", tt.name, tt.s.Ended())
		}
	}
}

func TestClaimTokenOfRoundTrips(t *testing.T) {
	tk := Task{ID: "0b8f7c2e-1111-4222-8333-444455556666", Attempt: 3}
	tok := ClaimTokenOf(tk)
	got, err := ParseClaimToken(tk.ID, tok.String())
	if err != nil || got != tok || got.Attempt != 3 {
		t.Fatalf("ParseClaimToken(ClaimTokenOf(t).String()) = %+v, %v", got, err)
	}
	if _, err := ParseClaimToken("another-task", tok.String()); err == nil {
		t.Error("a token was accepted for another task")
	}
}

// TestParseClaimTokenRefusesOtherSpellingsOfAnAttempt is what
// FuzzParseClaimToken found: strconv.Atoi took "+1" and "01" for attempt 1,
// so strings the queue never issued fenced a live claim.
func TestParseClaimTokenRefusesOtherSpellingsOfAnAttempt(t *testing.T) {
	const id = "0b9c1c52-0f1e-4d6e-9a83-0f5c1f5b8c0e"
	for _, s := range []string{id + ".+1", id + ".01", id + ".001", id + ". 1", id + ".1 "} {
		if tok, err := ParseClaimToken(id, s); err == nil {
			t.Errorf("ParseClaimToken(%q) = %+v, want it refused", s, tok)
		}
	}
	if tok, err := ParseClaimToken(id, id+".1"); err != nil || tok.Attempt != 1 {
		t.Errorf("the issued spelling was refused: %+v, %v", tok, err)
	}
}
