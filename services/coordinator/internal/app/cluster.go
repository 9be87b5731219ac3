package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// Cluster membership errors.
var (
	ErrUnknownNode      = domainerr.New(domainerr.NotFound, "no such node in the cluster")
	ErrNoTransferTarget = domainerr.New(domainerr.FailedPrecondition, "no other voter to hand leadership to")
	ErrLastVoter        = domainerr.New(domainerr.FailedPrecondition, "cannot remove the cluster's last voter: a cluster needs at least one; add another voter first")
)

// AddVoter adds a node as a voter (or confirms it is one) and records its
// gRPC address.
func (c *Coordinator) AddVoter(ctx context.Context, nodeID, raftAddr, grpcAddr string) ([]NodeStatus, error) {
	if err := c.raft.AddVoter(raft.ServerID(nodeID), raft.ServerAddress(raftAddr), 0, c.cfg.ApplyTimeout).Error(); err != nil {
		return nil, c.raftError("add voter", err)
	}
	if grpcAddr != "" {
		if _, err := c.apply(ctx, fsm.CmdSetNode, fsm.SetNode{Node: state.Node{ID: nodeID, GRPCAddress: grpcAddr}}); err != nil {
			return nil, err
		}
	}
	c.log.Info("voter added", zap.String("node_id", nodeID), zap.String("raft_address", raftAddr), zap.String("grpc_address", grpcAddr))
	st, err := c.Status(ctx)
	return st.Nodes, err
}

// RemoveServer removes a node from the cluster.
func (c *Coordinator) RemoveServer(ctx context.Context, nodeID string) ([]NodeStatus, error) {
	cfg := c.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return nil, c.raftError("read configuration", err)
	}
	found, otherVoters := false, 0
	for _, s := range cfg.Configuration().Servers {
		found = found || s.ID == raft.ServerID(nodeID)
		if s.ID != raft.ServerID(nodeID) && s.Suffrage == raft.Voter {
			otherVoters++
		}
	}
	if !found {
		return nil, ErrUnknownNode
	}
	if otherVoters == 0 {
		// Raft would refuse the change with an error of its own, which
		// reached the client as INTERNAL.
		return nil, ErrLastVoter
	}
	if err := c.raft.RemoveServer(raft.ServerID(nodeID), 0, c.cfg.ApplyTimeout).Error(); err != nil {
		return nil, c.raftError("remove server", err)
	}
	if nodeID != c.cfg.NodeID {
		if _, err := c.apply(ctx, fsm.CmdRemoveNode, fsm.RemoveNode{ID: nodeID}); err != nil {
			c.log.Warn("forgetting removed node's address failed", zap.Error(err))
		}
	}
	c.log.Info("server removed", zap.String("node_id", nodeID))
	st, err := c.Status(ctx)
	return st.Nodes, err
}

// TransferLeadership hands leadership to nodeID, or to the most up-to-date
// voter when nodeID is empty, and waits for the cluster to report the new
// leader.
func (c *Coordinator) TransferLeadership(ctx context.Context, nodeID string) (leaderID, leaderGRPC string, err error) {
	var f raft.Future
	if nodeID == "" {
		f = c.raft.LeadershipTransfer()
	} else {
		cfg := c.raft.GetConfiguration()
		if err := cfg.Error(); err != nil {
			return "", "", c.raftError("read configuration", err)
		}
		var addr raft.ServerAddress
		for _, s := range cfg.Configuration().Servers {
			if s.ID == raft.ServerID(nodeID) && s.Suffrage == raft.Voter {
				addr = s.Address
			}
		}
		if addr == "" {
			return "", "", ErrUnknownNode
		}
		f = c.raft.LeadershipTransferToServer(raft.ServerID(nodeID), addr)
	}
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return "", "", c.notLeader()
		}
		if err.Error() == "cannot find peer" {
			return "", "", ErrNoTransferTarget
		}
		return "", "", c.raftError("transfer leadership", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, addr := c.LeaderAddress(); id != "" && id != c.cfg.NodeID {
			return id, addr, nil
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-tick.C:
		}
	}
}

func (c *Coordinator) raftError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
		return c.notLeader()
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return domainerr.New(domainerr.Unavailable, "a leadership transfer is in progress; retry")
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return domainerr.New(domainerr.Unavailable, "raft is too busy; retry")
	}
	return fmt.Errorf("%s: %w", op, err)
}

// WatchSessions calls send for every session event after `after`, in index
// order, until ctx ends or send fails. It reads this node's own state, so any
// node can serve a watch. A watcher that starts at 0, or further back than the
// retained history, first gets a snapshot of every live session.
func (c *Coordinator) WatchSessions(ctx context.Context, after uint64, types []state.EventType, send func(state.Event) error) error {
	want := func(t state.EventType) bool { return len(types) == 0 || t == state.EventSnapshot || contains(types, t) }
	fresh := after == 0
	for {
		changed := c.store.Changed()
		events, truncated := c.store.EventsAfter(after, 1024)
		if fresh || truncated {
			fresh = false
			snap, at := c.store.SnapshotEvents()
			for _, e := range snap {
				if err := send(e); err != nil {
					return err
				}
			}
			after = at
			continue
		}
		for _, e := range events {
			if want(e.Type) {
				if err := send(e); err != nil {
					return err
				}
			}
			after = e.Index
		}
		if len(events) == 1024 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
