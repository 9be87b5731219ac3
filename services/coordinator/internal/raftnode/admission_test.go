package raftnode

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"
)

// nopFSM is a state machine with nothing in it.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}

// TestNodeWithoutStateVotesOnlyOnceAdmitted: a node that starts with no Raft
// state under AwaitAdmission (it may be a member that lost its data) grants
// no vote until admitted, and then none for a term at or before its vote
// floor (issue 17, finding 3).
func TestNodeWithoutStateVotesOnlyOnceAdmitted(t *testing.T) {
	n, err := Start(Config{
		NodeID: "wiped", BindAddr: "127.0.0.1:0", DataDir: t.TempDir(), AwaitAdmission: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, Logger: zaptest.NewLogger(t),
	}, nopFSM{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	candidate, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = candidate.Close() })

	ask := func(term uint64) (bool, error) {
		req := &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("candidate"), Addr: []byte(candidate.LocalAddr())},
			Term:      term,
		}
		var resp raft.RequestVoteResponse
		err := candidate.RequestVote("wiped", n.Transport.LocalAddr(), req, &resp)
		return resp.Granted, err
	}
	if n.Admitted() {
		t.Fatal("a node with no state is admitted at start")
	}
	if granted, err := ask(5); granted || err == nil || !strings.Contains(err.Error(), errNotAdmitted.Error()) {
		t.Fatalf("before admission: granted %v, %v; want a refusal", granted, err)
	}
	n.Admit(7)
	if granted, err := ask(7); granted || err == nil || !strings.Contains(err.Error(), errVoteFloor.Error()) {
		t.Fatalf("at the vote floor: granted %v, %v; want a refusal", granted, err)
	}
	if granted, err := ask(8); !granted || err != nil {
		t.Fatalf("after the vote floor: granted %v, %v; want a vote", granted, err)
	}
}
