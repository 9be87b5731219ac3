package service

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/background"
)

// Dead-server cleanup, after Consul autopilot's: a voter that is gone for
// good must leave the configuration, or the quorum stays counted over a
// member that will never vote again (three voters with one dead tolerate no
// further loss; two voters tolerate none either, but two of two is what the
// cluster really has).
//
// "Gone for good" is two facts held for CLUSTER_DEAD_SERVER_GRACE: the leader
// has not reached the voter at all, and the voter's address no longer
// resolves. In Kubernetes a StatefulSet pod's DNS name (the headless Service
// publishes not-ready pods too) exists exactly as long as the pod object does,
// so a crashing, partitioned or restarting pod keeps its name and is never
// removed, while a pod scaled away or deleted without replacement loses it. A
// removed node that comes back asks to join again (see membership.go).

// deadServers is the leader's view of which voters it cannot reach and
// since when.
type deadServers struct {
	mu          sync.Mutex
	unreachable map[raft.ServerID]time.Time // since the last successful contact
	unresolved  map[raft.ServerID]time.Time // since the first failed lookup
}

func newDeadServers() *deadServers {
	return &deadServers{unreachable: map[raft.ServerID]time.Time{}, unresolved: map[raft.ServerID]time.Time{}}
}

// observe consumes raft's heartbeat observations (the leader emits them per
// follower) until ch closes.
func (d *deadServers) observe(ch <-chan raft.Observation) {
	for o := range ch {
		d.mu.Lock()
		switch v := o.Data.(type) {
		case raft.FailedHeartbeatObservation:
			if _, ok := d.unreachable[v.PeerID]; !ok {
				d.unreachable[v.PeerID] = v.LastContact
			}
		case raft.ResumedHeartbeatObservation:
			delete(d.unreachable, v.PeerID)
		case raft.LeaderObservation:
			// A new leader (this node or another) starts its own count.
			clear(d.unreachable)
			clear(d.unresolved)
		}
		d.mu.Unlock()
	}
}

// cleanDeadServers removes dead voters, one per tick, while this node leads.
func (s *Service) cleanDeadServers(ctx context.Context) {
	grace := s.cfg.Cluster.DeadServerGrace
	d := newDeadServers()
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	s.node.Raft.RegisterObserver(obs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Until ch is closed, also after a panic (which is logged).
		background.Loop(context.Background(), s.log, "dead-server-observer", background.Options{}, func(context.Context) { d.observe(ch) })
	}()
	defer func() {
		s.node.Raft.DeregisterObserver(obs)
		close(ch)
		<-done
	}()

	tick := time.NewTicker(min(grace/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.node.Raft.State() != raft.Leader {
			continue
		}
		if id, ok := s.deadVoter(ctx, d, grace); ok {
			s.log.Warn("removing a voter gone for good",
				zap.String("node_id", string(id)), zap.Duration("grace", grace))
			if _, err := s.app.RemoveServer(ctx, string(id)); err != nil {
				s.log.Warn("removing a dead voter failed", zap.String("node_id", string(id)), zap.Error(err))
			} else {
				s.metrics.deadRemoved.Add(1)
			}
		}
	}
}

// deadVoter picks a voter to remove: unreachable and unresolvable for the
// whole grace period, and only if the voters left still hold a majority of
// reachable ones.
func (s *Service) deadVoter(ctx context.Context, d *deadServers, grace time.Duration) (raft.ServerID, bool) {
	f := s.node.Raft.GetConfiguration()
	if f.Error() != nil {
		return "", false
	}
	self := raft.ServerID(s.cfg.Cluster.NodeID)
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var voters, down int
	var candidate raft.ServerID
	inConfig := map[raft.ServerID]bool{}
	for _, srv := range f.Configuration().Servers {
		inConfig[srv.ID] = true
		if srv.Suffrage != raft.Voter {
			continue
		}
		voters++
		since, unreachable := d.unreachable[srv.ID]
		if srv.ID == self || !unreachable {
			delete(d.unresolved, srv.ID)
			continue
		}
		down++
		host, _, err := net.SplitHostPort(string(srv.Address))
		if err != nil || s.resolvable(ctx, host) {
			delete(d.unresolved, srv.ID)
			continue
		}
		if _, ok := d.unresolved[srv.ID]; !ok {
			d.unresolved[srv.ID] = now
		}
		if candidate == "" && now.Sub(since) >= grace && now.Sub(d.unresolved[srv.ID]) >= grace {
			candidate = srv.ID
		}
	}
	for id := range d.unreachable {
		if !inConfig[id] {
			delete(d.unreachable, id)
			delete(d.unresolved, id)
		}
	}
	// After removing one, voters-1 remain of which voters-down are up; they
	// must be a majority of the smaller configuration.
	if candidate == "" || voters-down <= (voters-1)/2 {
		return "", false
	}
	return candidate, true
}
