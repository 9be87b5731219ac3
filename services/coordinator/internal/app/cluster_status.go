// Package app holds the coordinator's use cases, one file each. Use cases read
// the state store and Raft, and change state only by applying commands through
// Raft; they know nothing of gRPC.
package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// NodeStatus is one member of the Raft configuration.
type NodeStatus struct {
	ID          string
	RaftAddress string
	Suffrage    string // voter, nonvoter, staging
	State       string // leader, follower, candidate, shutdown, unreachable
	LastContact time.Time
}

// SnapshotStatus describes the latest local snapshot.
type SnapshotStatus struct {
	ID      string
	Index   uint64
	Term    uint64
	TakenAt time.Time
	Size    int64
}

// ClusterStatus is the cluster as seen by this node.
type ClusterStatus struct {
	LeaderID      string
	LeaderAddress string
	// LeaderGRPCAddress is where clients reach the leader, when recorded.
	LeaderGRPCAddress string
	Nodes             []NodeStatus
	Term              uint64
	CommitIndex       uint64
	AppliedIndex      uint64
	LastLogIndex      uint64
	LastSnapshot      *SnapshotStatus
	AnsweredBy        string
	// Live sessions and held locks in this node's state.
	Sessions, Locks int
	// StorageError is why this node cannot write its Raft storage; empty
	// while it can.
	StorageError string
}

// Status reports the configuration, the leader and the Raft indexes as this
// node sees them; any node answers.
func (c *Coordinator) Status(ctx context.Context) (ClusterStatus, error) {
	future := c.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return ClusterStatus{}, fmt.Errorf("read raft configuration: %w", err)
	}
	leaderAddr, leaderID := c.raft.LeaderWithID()
	local := raft.ServerID(c.cfg.NodeID)
	st := ClusterStatus{
		LeaderID:      string(leaderID),
		LeaderAddress: string(leaderAddr),
		Term:          c.raft.CurrentTerm(),
		CommitIndex:   c.raft.CommitIndex(),
		AppliedIndex:  c.raft.AppliedIndex(),
		LastLogIndex:  c.raft.LastIndex(),
		AnsweredBy:    c.cfg.NodeID,
	}
	st.LeaderGRPCAddress, _ = c.store.NodeAddress(string(leaderID))
	st.Sessions, st.Locks = c.store.Counts()
	if c.cfg.StorageError != nil {
		if err := c.cfg.StorageError(); err != nil {
			st.StorageError = err.Error()
		}
	}
	for _, s := range future.Configuration().Servers {
		n := NodeStatus{ID: string(s.ID), RaftAddress: string(s.Address), Suffrage: strings.ToLower(s.Suffrage.String()), State: "follower"}
		switch {
		case s.ID == leaderID:
			n.State = "leader"
		case s.ID == local:
			n.State = stateName(c.raft.State())
		}
		if s.ID == local && s.ID != leaderID {
			n.LastContact = c.raft.LastContact()
		}
		st.Nodes = append(st.Nodes, n)
	}
	metas, err := c.snapshots.List()
	if err != nil {
		return ClusterStatus{}, fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(metas) > 0 {
		m := metas[0]
		st.LastSnapshot = &SnapshotStatus{ID: m.ID, Index: m.Index, Term: m.Term, Size: m.Size, TakenAt: snapshotTime(m.ID)}
	}
	return st, ctx.Err()
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Shutdown:
		return "shutdown"
	default:
		return "follower"
	}
}

// snapshotTime recovers the time from a file snapshot id (term-index-millis).
func snapshotTime(id string) time.Time {
	var term, index, ms uint64
	if _, err := fmt.Sscanf(id, "%d-%d-%d", &term, &index, &ms); err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}
