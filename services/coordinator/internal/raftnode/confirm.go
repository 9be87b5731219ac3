package raftnode

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ErrLeadershipNotConfirmed is why ConfirmLeadership failed: this node does
// not lead, a voter knows a newer term, or too few voters answered in time.
var ErrLeadershipNotConfirmed = errors.New("leadership not confirmed by a quorum")

// ConfirmLeadership asks every other voter, with a heartbeat sent now, whether
// it still follows this node in its current term, and returns nil once a
// quorum (this node included) has said yes. It is the leadership check of a
// read index (Raft thesis, 6.4), with no log entry written.
//
// Raft's VerifyLeader is not this: it counts answers to heartbeats already
// in flight when it is called, so a leader frozen past an election (SIGSTOP,
// a long GC pause) could, on waking, read an answer that sat in its socket
// during the freeze and take it for a quorum's word. Here, every answer
// counted is to a request sent after the call. A voter that has seen a
// newer term (it voted in a later election, or follows a newer leader)
// refuses the request, and any later leader needs a quorum that voted in a
// later term, which overlaps every quorum that answers yes here: a yes
// quorum proves no other leader was elected before it answered.
//
// The request is a heartbeat as Raft sends one (no entries, no commit
// index), so a follower takes it on its transport's fast path, away from its
// log, and it moves nothing but the follower's last-contact time.
func (n *Node) ConfirmLeadership(timeout time.Duration) error {
	// The term first, then the state: a node that reads Leader after term T
	// leads in T or a later term, and in a later one the voters refuse a
	// heartbeat of T. (The other order could send a heartbeat in a term this
	// node only stands for election in, which would disturb the election.)
	term := n.Raft.CurrentTerm()
	if n.Raft.State() != raft.Leader {
		return fmt.Errorf("%w: not the leader", ErrLeadershipNotConfirmed)
	}
	cfg := n.Raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return fmt.Errorf("%w: %v", ErrLeadershipNotConfirmed, err)
	}
	if err := askQuorum(n.trans, n.id, term, cfg.Configuration().Servers, timeout); err != nil {
		return err
	}
	return n.stillLeading(term)
}

// askQuorum sends every voter but self a heartbeat of term and returns nil
// once a quorum of the voters (self included) has accepted it.
func askQuorum(trans raft.Transport, self raft.ServerID, term uint64, servers []raft.Server, timeout time.Duration) error {
	var others []raft.Server
	voters, yes := 0, 0
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.ID == self {
			yes++
			continue
		}
		others = append(others, s)
	}
	quorum := voters/2 + 1
	if yes >= quorum {
		return nil
	}

	peer := trans.EncodePeer(self, trans.LocalAddr())
	answers := make(chan error, len(others))
	for _, s := range others {
		req := &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(self), Addr: peer},
			Term:      term,
		}
		go func() {
			var resp raft.AppendEntriesResponse
			switch err := trans.AppendEntries(s.ID, s.Address, req, &resp); {
			case err != nil:
				answers <- fmt.Errorf("%s: %w", s.ID, err)
			case resp.Term > term:
				answers <- fmt.Errorf("%s is in term %d, after this leader's %d", s.ID, resp.Term, term)
			case !resp.Success:
				answers <- fmt.Errorf("%s refused the heartbeat", s.ID)
			default:
				answers <- nil
			}
		}()
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var last error
	for pending := len(others); pending > 0; pending-- {
		select {
		case err := <-answers:
			if err == nil {
				yes++
				if yes >= quorum {
					return nil
				}
				continue
			}
			last = err
		case <-deadline.C:
			return fmt.Errorf("%w: %d of the %d voters needed said yes within %v", ErrLeadershipNotConfirmed, yes, quorum, timeout)
		}
	}
	return fmt.Errorf("%w: %d of the %d voters needed said yes (%v)", ErrLeadershipNotConfirmed, yes, quorum, last)
}

// stillLeading checks that this node still leads in the term it asked about:
// a quorum's yes speaks for that term only.
func (n *Node) stillLeading(term uint64) error {
	if n.Raft.State() != raft.Leader || n.Raft.CurrentTerm() != term {
		return fmt.Errorf("%w: leadership changed during the check", ErrLeadershipNotConfirmed)
	}
	return nil
}
