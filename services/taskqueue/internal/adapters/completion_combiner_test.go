package adapters

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// TestCompletionCombiner: batches of several sessions settled in one
// statement each settle only their own session's claims, as alone; a
// batch whose caller left while it waited settles nothing.
func TestCompletionCombiner(t *testing.T) {
	r := openRepositories(t)
	ctx := context.Background()
	repo := r.tasks.(*TaskPostgresRepository)
	typ := "compl-" + uuid.NewString()[:8]
	enqueueOf(t, r, typ, "", 0, 9)
	claims := make(map[string][]task.Claim)
	for _, s := range []string{"compl-1", "compl-2", "compl-3"} {
		got, _, err := r.tasks.Claim(ctx, task.ClaimRequest{SessionID: s, SessionName: s, Types: []string{typ}, Limit: 3, MaxConcurrent: 3})
		if err != nil || len(got) != 3 {
			t.Fatalf("%s claimed %d, %v", s, len(got), err)
		}
		claims[s] = got
	}
	completions := func(cs []task.Claim) []task.Completion {
		out := make([]task.Completion, len(cs))
		for i, c := range cs {
			out[i] = task.Completion{Token: c.Token, Result: []byte(`{"ok":true}`)}
		}
		return out
	}

	// Hold the combiner at a first statement, so that the batches below
	// wait and go together in the next.
	queued := make(chan int, 100)
	release, blocked := make(chan struct{}), make(chan struct{})
	var sizes []int
	repo.completions.statements = 1
	repo.completions.queued = func(n int) { queued <- n }
	repo.completions.taken = func(n int) {
		sizes = append(sizes, n)
		if len(sizes) == 1 {
			close(blocked)
			<-release
		}
	}
	go func() {
		_, _, _ = r.tasks.CompleteMany(ctx, "compl-blocker", []task.Completion{{Token: task.ClaimToken{TaskID: uuid.NewString(), Attempt: 1}}})
	}()
	<-blocked
	<-queued

	type outcome struct {
		tasks []task.Task
		errs  []error
		err   error
	}
	one := make(chan outcome, 1)
	go func() {
		tasks, errs, err := r.tasks.CompleteMany(ctx, "compl-1", completions(claims["compl-1"]))
		one <- outcome{tasks, errs, err}
	}()
	// compl-2 also tries one of compl-3's claims, which is not its own.
	two := make(chan outcome, 1)
	go func() {
		tasks, errs, err := r.tasks.CompleteMany(ctx, "compl-2", completions(append(claims["compl-2"], claims["compl-3"][0])))
		two <- outcome{tasks, errs, err}
	}()
	goneCtx, cancel := context.WithCancel(ctx)
	gone := make(chan outcome, 1)
	go func() {
		tasks, errs, err := r.tasks.CompleteMany(goneCtx, "compl-3", completions(claims["compl-3"]))
		gone <- outcome{tasks, errs, err}
	}()
	timeout := time.After(30 * time.Second)
	for n := 0; n < 3; {
		select {
		case n = <-queued:
		case <-timeout:
			t.Fatal("the batches never queued")
		}
	}
	cancel()
	if g := <-gone; !errors.Is(g.err, context.Canceled) {
		t.Fatalf("the gone caller's batch = %v; want context.Canceled", g.err)
	}
	close(release)

	o1, o2 := <-one, <-two
	if o1.err != nil || o2.err != nil {
		t.Fatalf("batches: %v, %v", o1.err, o2.err)
	}
	if len(sizes) != 2 || sizes[1] != 2 {
		t.Fatalf("statements' batches: %v; want the blocker's, then the two callers' together", sizes)
	}
	for i, tk := range o1.tasks {
		if o1.errs[i] != nil || tk.State != task.Completed || tk.ID != claims["compl-1"][i].Task.ID || string(tk.Result) != `{"ok": true}` {
			t.Errorf("compl-1's claim %d: %+v, %v", i, tk, o1.errs[i])
		}
	}
	for i := range 3 {
		if o2.errs[i] != nil || o2.tasks[i].State != task.Completed || o2.tasks[i].ID != claims["compl-2"][i].Task.ID {
			t.Errorf("compl-2's claim %d: %+v, %v", i, o2.tasks[i], o2.errs[i])
		}
	}
	wantErr(t, "compl-2 completing compl-3's claim", o2.errs[3], task.ErrClaimLost)
	// The gone caller's claims, and the one compl-2 tried, are as they were.
	for _, c := range claims["compl-3"] {
		tk, err := r.tasks.Get(ctx, c.Task.ID)
		if err != nil || tk.State != task.Claimed || tk.ClaimedBySessionID != "compl-3" {
			t.Errorf("compl-3's task after its caller left: %+v, %v; want still claimed", tk, err)
		}
	}
	_, errs, err := r.tasks.CompleteMany(ctx, "compl-3", completions(claims["compl-3"]))
	if err != nil || errors.Join(errs...) != nil {
		t.Fatalf("compl-3 completing its own claims: %v, %v", err, errs)
	}
}
