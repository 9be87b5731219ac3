package liveness

import (
	"testing"
	"time"
)

func TestLeaseLifecycle(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := NewTracker(10 * time.Second)
	tr.Arm("a", t0)
	if got := tr.Overdue(t0.Add(10*time.Second), 0); len(got) != 0 {
		t.Fatalf("overdue at exactly the lease end: %v", got)
	}
	if got := tr.Overdue(t0.Add(10*time.Second+time.Nanosecond), 0); len(got) != 1 {
		t.Fatalf("not overdue after the lease: %v", got)
	}
	exp := tr.Beat("a", t0.Add(5*time.Second), 2, "testing")
	if !exp.Equal(t0.Add(15 * time.Second)) {
		t.Fatalf("lease after beat ends %v", exp)
	}
	if got := tr.Overdue(t0.Add(14*time.Second), 0); len(got) != 0 {
		t.Fatalf("beaten session overdue: %v", got)
	}
	// Grace: overdue by more than grace only.
	if got := tr.Overdue(t0.Add(16*time.Second), 2*time.Second); len(got) != 0 {
		t.Fatalf("within grace yet overdue: %v", got)
	}
	if got := tr.Overdue(t0.Add(18*time.Second), 2*time.Second); got["a"] != t0.Add(5*time.Second) {
		t.Fatalf("overdue map = %v, want a with its last beat", got)
	}
	// Arming never shortens a running lease.
	tr.Arm("a", t0)
	if l, _ := tr.Get("a"); !l.ExpiresAt.Equal(t0.Add(15*time.Second)) || l.TaskCount != 2 || l.Activity != "testing" {
		t.Fatalf("lease after re-arm = %+v", l)
	}
	tr.Forget("a")
	if tr.Len() != 0 {
		t.Fatal("forgotten lease kept")
	}
}

// Live and Overdue are one definition: a lease is live up to and including
// its expiry, and overdue from the nanosecond after.
func TestLeaseLiveAgreesWithOverdue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := NewTracker(10 * time.Second)
	tr.Arm("a", t0)
	l, _ := tr.Get("a")
	for _, at := range []time.Duration{0, 10 * time.Second, 10*time.Second + time.Nanosecond, time.Minute} {
		now := t0.Add(at)
		_, overdue := tr.Overdue(now, 0)["a"]
		if l.Live(now) == overdue {
			t.Errorf("at +%v: Live = %v but Overdue lists it = %v", at, l.Live(now), overdue)
		}
	}
}
