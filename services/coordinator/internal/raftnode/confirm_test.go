package raftnode

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"
)

// votersTransport answers heartbeats as each voter is told to: with success
// in a term, or never (a voter that is down or partitioned away).
type votersTransport struct {
	raft.Transport // only the methods below are called

	mu     sync.Mutex
	asked  []*raft.AppendEntriesRequest
	answer map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool)
	hang   chan struct{}
}

func (v *votersTransport) LocalAddr() raft.ServerAddress { return "leader:1" }
func (v *votersTransport) EncodePeer(_ raft.ServerID, a raft.ServerAddress) []byte {
	return []byte(a)
}

func (v *votersTransport) AppendEntries(id raft.ServerID, _ raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	v.mu.Lock()
	v.asked = append(v.asked, req)
	answer := v.answer[id]
	v.mu.Unlock()
	r, ok := answer(req)
	if !ok {
		<-v.hang
		return errors.New("connection closed")
	}
	*resp = r
	return nil
}

func yes(req *raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool) {
	return raft.AppendEntriesResponse{Term: req.Term, Success: true}, true
}
func silent(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool) {
	return raft.AppendEntriesResponse{}, false
}
func newerTerm(req *raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool) {
	return raft.AppendEntriesResponse{Term: req.Term + 1}, true
}

func servers(ids ...string) []raft.Server {
	var s []raft.Server
	for _, id := range ids {
		s = append(s, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":1")})
	}
	return s
}

func TestAskQuorum(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []raft.Server
		answer  map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool)
		want    string // "" for a confirmation, else part of the error
		asked   int
	}{
		{name: "one voter", servers: servers("leader"), asked: 0},
		{name: "one of two followers", servers: servers("leader", "b", "c"),
			answer: map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool){"b": silent, "c": yes}, asked: 2},
		{name: "a voter in a newer term", servers: servers("leader", "b", "c"),
			answer: map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool){"b": newerTerm, "c": newerTerm},
			want:   "is in term 8, after this leader's 7", asked: 2},
		{name: "no answer in time", servers: servers("leader", "b", "c"),
			answer: map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool){"b": silent, "c": silent},
			want:   "1 of the 2 voters needed said yes within", asked: 2},
		{name: "non-voters neither asked nor counted",
			servers: append(servers("leader", "b", "c"),
				raft.Server{Suffrage: raft.Nonvoter, ID: "d", Address: "d:1"}, raft.Server{Suffrage: raft.Nonvoter, ID: "e", Address: "e:1"}),
			answer: map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool){"b": silent, "c": silent, "d": yes, "e": yes},
			want:   "within", asked: 2},
		{name: "five voters, two yes", servers: servers("leader", "b", "c", "d", "e"),
			answer: map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool){"b": yes, "c": silent, "d": silent, "e": yes}, asked: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &votersTransport{answer: tc.answer, hang: make(chan struct{})}
			defer close(tr.hang)
			err := askQuorum(tr, "leader", 7, tc.servers, 200*time.Millisecond)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("not confirmed: %v", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrLeadershipNotConfirmed) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an ErrLeadershipNotConfirmed with %q", err, tc.want)
			}
			tr.mu.Lock()
			defer tr.mu.Unlock()
			// A confirmation may return before every request is out; never
			// more than the other voters are asked.
			if len(tr.asked) > tc.asked {
				t.Fatalf("asked %d servers, want at most the %d other voters", len(tr.asked), tc.asked)
			}
			// What the followers get must be a heartbeat as Raft sends one,
			// so that they take it on their transport's fast path and change
			// nothing in their logs.
			for _, req := range tr.asked {
				if req.Term != 7 || len(req.Entries) != 0 || req.PrevLogEntry != 0 || req.PrevLogTerm != 0 ||
					req.LeaderCommitIndex != 0 || string(req.ID) != "leader" || string(req.Addr) != "leader:1" {
					t.Fatalf("request is not a heartbeat of term 7 from the leader: %+v", req)
				}
			}
		})
	}
}

// Each call asks afresh: answers are never carried from one call to the next.
func TestAskQuorumSendsFreshRequestsEveryCall(t *testing.T) {
	tr := &votersTransport{hang: make(chan struct{})}
	defer close(tr.hang)
	tr.answer = map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool){"b": yes, "c": yes}
	if err := askQuorum(tr, "leader", 3, servers("leader", "b", "c"), time.Second); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	tr.answer = map[raft.ServerID]func(*raft.AppendEntriesRequest) (raft.AppendEntriesResponse, bool){"b": newerTerm, "c": silent}
	tr.mu.Unlock()
	if err := askQuorum(tr, "leader", 3, servers("leader", "b", "c"), 100*time.Millisecond); err == nil {
		t.Fatal("confirmed by answers given to an earlier call")
	}
}

// Three real nodes: the leader confirms, a follower does not, and a voter
// that has gone quiet leaves a two-node quorum still able to confirm.
func TestConfirmLeadershipOnACluster(t *testing.T) {
	nodes := make([]*Node, 3)
	for i := range nodes {
		n, err := Start(Config{
			NodeID: fmt.Sprintf("n%d", i), BindAddr: "127.0.0.1:0", DataDir: t.TempDir(), Bootstrap: i == 0,
			HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, Logger: zaptest.NewLogger(t),
		}, nopFSM{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Shutdown() })
		nodes[i] = n
	}
	leader := nodes[0]
	waitFor(t, "n0 leads", func() bool { return leader.Raft.State() == raft.Leader })
	for _, n := range nodes[1:] {
		if err := leader.Raft.AddVoter(n.id, n.Transport.LocalAddr(), 0, 5*time.Second).Error(); err != nil {
			t.Fatalf("add %s: %v", n.id, err)
		}
	}
	if err := leader.ConfirmLeadership(5 * time.Second); err != nil {
		t.Fatalf("leader: %v", err)
	}
	for _, n := range nodes[1:] {
		if err := n.ConfirmLeadership(5 * time.Second); !errors.Is(err, ErrLeadershipNotConfirmed) {
			t.Fatalf("follower %s: %v, want ErrLeadershipNotConfirmed", n.id, err)
		}
	}
	if err := nodes[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := leader.ConfirmLeadership(5 * time.Second); err != nil {
		t.Fatalf("leader with one voter of three down: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
