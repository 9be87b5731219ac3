package raftnode

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestStorageGuardHoldsCampaignUntilAProbeSucceeds: a failed write makes
// the node refuse, itself, its own requests for votes, without asking
// anyone; a failing probe keeps it so; the first probe that succeeds lets
// it stand again. Each change is logged once, however many writes fail.
func TestStorageGuardHoldsCampaignUntilAProbeSucceeds(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	g := newStorageGuard(t.TempDir(), zap.New(core))
	g.checkEvery, g.recoveryEvery = time.Hour, 5*time.Millisecond
	var full atomic.Bool
	var probes atomic.Int64
	g.probe = func(int) error {
		probes.Add(1)
		if full.Load() {
			return syscall.ENOSPC
		}
		return nil
	}
	// No transport behind the gate: a request that got through would panic.
	gate := campaignGate{guard: g}
	askVote := func() bool {
		var resp raft.RequestPreVoteResponse
		if err := gate.RequestPreVote("peer", "peer:1", &raft.RequestPreVoteRequest{Term: 7}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Granted || resp.Term != 7 {
			t.Fatalf("refused pre-vote: %+v, want not granted at the asked term", resp)
		}
		var vresp raft.RequestVoteResponse
		if err := gate.RequestVote("peer", "peer:1", &raft.RequestVoteRequest{Term: 7}, &vresp); err != nil {
			t.Fatal(err)
		}
		return vresp.Granted
	}

	if g.quiet("entering candidate state") {
		t.Fatal("raft's campaign records are quieted while the storage is writable")
	}
	full.Store(true)
	for range 50 {
		g.failed("write raft log", syscall.ENOSPC)
	}
	if !g.campaignHeld() || g.status().Err == nil || g.status().Failures != 1 {
		t.Fatalf("after failed writes: held %v, status %+v", g.campaignHeld(), g.status())
	}
	askVote()
	if !g.quiet("entering candidate state") || g.quiet("entering leader state") {
		t.Fatal("while the campaign is held, only the records it repeats are quieted")
	}
	if err := g.check(); err == nil {
		t.Fatal("check passes while the storage is unwritable")
	}

	// A node that leads with unwritable storage hands leadership over.
	r := &fakeLeader{}
	r.leader.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.run(ctx, r) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); r.leader.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a leader with unwritable storage did not hand leadership over")
		}
	}

	for deadline := time.Now().Add(5 * time.Second); probes.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the guard does not probe unwritable storage")
		}
	}
	if !g.campaignHeld() {
		t.Fatal("the campaign hold ended while probes fail")
	}
	full.Store(false)
	for deadline := time.Now().Add(5 * time.Second); g.campaignHeld(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the guard did not find the storage writable again")
		}
	}
	if g.status().Err != nil {
		t.Fatalf("status after recovery: %+v", g.status())
	}
	if n := logs.FilterMessageSnippet("stands for no election").Len(); n != 1 {
		t.Errorf("%d log lines for the storage becoming unwritable, want 1", n)
	}
	if n := logs.FilterMessageSnippet("writable again").Len(); n != 1 {
		t.Errorf("%d log lines for the storage becoming writable, want 1", n)
	}
	if n := r.transfers.Load(); n != 1 {
		t.Errorf("%d leadership transfers, want 1", n)
	}
}

// fakeLeader leads until asked to transfer.
type fakeLeader struct {
	leader    atomic.Bool
	transfers atomic.Int64
}

func (f *fakeLeader) State() raft.RaftState {
	if f.leader.Load() {
		return raft.Leader
	}
	return raft.Follower
}

func (f *fakeLeader) LeadershipTransfer() raft.Future {
	f.transfers.Add(1)
	f.leader.Store(false)
	return doneFuture{}
}

type doneFuture struct{}

func (doneFuture) Error() error { return nil }
