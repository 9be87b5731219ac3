package service

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// Joining and forming a cluster.
//
// A node with discovery nodes never trusts its own disk alone to say it is a
// member: a node removed while it was away (a pod deleted for good, then
// recreated from an old volume) still finds itself in its stale
// configuration and would wait forever for a leader that no longer
// replicates to it. So until a leader replicates to it, it asks the known
// nodes how they see the cluster and asks to be added when their leader's
// configuration lacks it.
//
// A node that starts with no Raft state takes part in no Raft exchange until
// it knows what it is (raftnode's admission): new, or a member that lost its
// data. Raft's safety rests on every voter remembering the entries it
// acknowledged and the votes it granted; a member that lost them must not
// vote, nor be counted, as the old voter. So when the leader's configuration
// still lists this node's id, the node asks for its old identity to be
// removed (committed by the other voters alone, which hold every committed
// entry), and once the leader's configuration lacks it, it is admitted and
// asks to be added back as a new voter with an empty log, as any new node
// does; the leader then sends it a snapshot. Removing needs a leader, that
// is a majority of the other voters: with too few of them up the node waits,
// and it needs an admin credential (AUTH_TOKEN_FILE), as joining does.
//
// The bootstrap node (pod 0 of a StatefulSet, node-1 in the README) forms a
// new cluster only when it has no Raft state and every other known node
// answers that it has no configuration either: an empty cluster. A bootstrap
// node that lost its data while the others kept theirs rejoins them as
// above instead of founding a second cluster, and while they are all down it
// waits for them. A fresh cluster needs all nodes started at once
// (podManagementPolicy: Parallel).

// ensureMember runs until this node is a member replicated to by a leader, or
// ctx ends.
func (s *Service) ensureMember(ctx context.Context, mayBootstrap bool) {
	backoff := 100 * time.Millisecond
	for {
		if s.replicatedByLeader() {
			s.log.Info("cluster membership confirmed", zap.String("node_id", s.cfg.Cluster.NodeID))
			return
		}
		done, err := s.joinOrForm(ctx, mayBootstrap)
		if err != nil {
			s.log.Info("cluster join attempt failed", zap.Error(err))
		}
		if done {
			// Added, or bootstrapped: wait for a leader to take us on.
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// replicatedByLeader reports whether this node leads, or follows a leader
// that has been in touch recently, with itself in the configuration.
func (s *Service) replicatedByLeader() bool {
	r := s.node.Raft
	_, leader := r.LeaderWithID()
	if leader == "" || !s.inConfiguration() {
		return false
	}
	if r.State() == raft.Leader {
		return true
	}
	return time.Since(r.LastContact()) < 2*s.cfg.Raft.HeartbeatTimeout+time.Second
}

// joinOrForm asks each known node how it sees the cluster. Seeing a leader
// whose configuration lacks this node, it asks to be added; seeing one whose
// configuration lists a node that lost its data (this one, not admitted yet),
// it asks for that identity to be removed first; seeing every other node
// answer with no configuration, the bootstrap node forms the cluster. done
// reports that it joined or formed.
func (s *Service) joinOrForm(ctx context.Context, mayBootstrap bool) (done bool, err error) {
	others, answered, configured := 0, 0, 0
	known := s.discoveryNodes(ctx)
	for _, addr := range known {
		st, err := s.peerStatus(ctx, addr)
		if err != nil {
			if addr != s.grpcAddr {
				others++
			}
			s.log.Debug("known node did not answer", zap.String("node", addr), zap.Error(err))
			continue
		}
		if st.GetAnsweredBy() == s.cfg.Cluster.NodeID {
			continue // ourselves
		}
		others++
		answered++
		if len(st.GetNodes()) > 0 {
			configured++
		}
		if st.GetLeader().GetNodeId() == "" {
			continue
		}
		if !s.node.Admitted() {
			return s.admitOrRemove(ctx, addr, st)
		}
		if listed(st, s.cfg.Cluster.NodeID, s.RaftAddr()) {
			return false, nil // a member already; the leader will reach us
		}
		if err := s.askToJoin(ctx, addr); err != nil {
			return false, err
		}
		s.log.Info("joined the cluster", zap.String("via", addr))
		return true, nil
	}
	if mayBootstrap && !s.node.HadState() && answered == others && configured == 0 {
		s.log.Info("every known node answered with no cluster: forming one", zap.Int("other_nodes", others))
		return true, s.node.Bootstrap()
	}
	if !s.node.Admitted() && !s.waitLogged {
		switch {
		case answered < others:
			s.waitLogged = true
			s.log.Warn("this node has no raft state and cannot reach every known node: it neither forms nor joins a cluster until it hears from them",
				zap.Int("other_nodes", others), zap.Int("answered", answered), zap.Strings("discovery_nodes", known))
		case configured > 0:
			// Every known node answers, some with a configuration, none
			// with a leader: too few voters kept their data to elect one.
			s.waitLogged = true
			s.log.Warn("this node has no raft state and the cluster has no leader to settle its membership: it waits; if too few nodes kept their data to elect one, recover with a peers.json (docs/DEPLOY.md)",
				zap.Int("other_nodes", others), zap.Int("configured", configured))
		}
	}
	return false, nil
}

// admitOrRemove settles what a node with no Raft state is, from the
// leader's own view (a follower's configuration may lag): absent from the
// configuration, it is admitted and asks to join; present, it lost its
// data, and it asks for its old identity to be removed first.
func (s *Service) admitOrRemove(ctx context.Context, via string, st *coordinatorv1.GetClusterStatusResponse) (bool, error) {
	leaderID := st.GetLeader().GetNodeId()
	if g := st.GetLeader().GetGrpcAddress(); g != "" && st.GetAnsweredBy() != leaderID {
		lst, err := s.peerStatus(ctx, g)
		if err != nil {
			return false, fmt.Errorf("ask the leader %s: %w", leaderID, err)
		}
		if lst.GetAnsweredBy() != leaderID || lst.GetLeader().GetNodeId() != leaderID {
			return false, fmt.Errorf("leader %s answered as %s, naming %q as leader", leaderID, lst.GetAnsweredBy(), lst.GetLeader().GetNodeId())
		}
		st = lst
	}
	id := s.cfg.Cluster.NodeID
	if old, ok := member(st, id); ok {
		s.log.Warn("this node has no raft state but the cluster still counts it as a voter (its data was lost): removing its old identity to add it back as a new member",
			zap.String("node_id", id), zap.String("old_raft_address", old.GetRaftAddress()), zap.String("leader", leaderID))
		if err := s.askToRemoveSelf(ctx, via); err != nil {
			if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated {
				s.log.Error("cannot remove this node's old identity: AUTH_TOKEN_FILE must hold an admin credential; or remove it by hand, after which this node joins by itself",
					zap.String("command", fmt.Sprintf("gaia cluster remove --node %s --coordinator %s --token <admin credential>", id, via)), zap.Error(err))
			}
			return false, fmt.Errorf("remove this node's old identity: %w", err)
		}
		s.log.Info("old identity removed; joining as a new member", zap.String("node_id", id))
		return false, nil // the next round sees the configuration without us
	}
	// Not a member (any more): a new node. Votes only for terms after the
	// cluster's current one, in which its former self may have voted.
	s.node.Admit(st.GetTerm())
	if err := s.askToJoin(ctx, via); err != nil {
		return false, err
	}
	s.log.Info("joined the cluster", zap.String("via", via))
	return true, nil
}

// member finds id in the configuration st reports.
func member(st *coordinatorv1.GetClusterStatusResponse, id string) (*coordinatorv1.Node, bool) {
	for _, n := range st.GetNodes() {
		if n.GetNodeId() == id {
			return n, true
		}
	}
	return nil, false
}

func listed(st *coordinatorv1.GetClusterStatusResponse, id, raftAddr string) bool {
	for _, n := range st.GetNodes() {
		if n.GetNodeId() == id && n.GetRaftAddress() == raftAddr {
			return true
		}
	}
	return false
}

func (s *Service) peerStatus(ctx context.Context, addr string) (st *coordinatorv1.GetClusterStatusResponse, err error) {
	err = s.callCluster(ctx, addr, 2*time.Second, func(cctx context.Context, c coordinatorv1.ClusterServiceClient) (err error) {
		st, err = c.GetClusterStatus(cctx, &coordinatorv1.GetClusterStatusRequest{})
		return err
	})
	return st, err
}

// callCluster makes one ClusterService call to addr on this node's own
// behalf (withOwnCredential), within timeout, on a connection of its own.
func (s *Service) callCluster(ctx context.Context, addr string, timeout time.Duration, call func(context.Context, coordinatorv1.ClusterServiceClient) error) error {
	conn, err := s.dialGRPC(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return call(s.withOwnCredential(cctx), coordinatorv1.NewClusterServiceClient(conn))
}

func (s *Service) inConfiguration() bool {
	f := s.node.Raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == raft.ServerID(s.cfg.Cluster.NodeID) {
			return true
		}
	}
	return false
}

func (s *Service) askToJoin(ctx context.Context, addr string) error {
	// Joining is a membership change: AUTH_TOKEN_FILE must hold an admin
	// credential.
	return s.callCluster(ctx, addr, 10*time.Second, func(cctx context.Context, c coordinatorv1.ClusterServiceClient) error {
		_, err := c.AddVoter(cctx, &coordinatorv1.AddVoterRequest{
			NodeId:      s.cfg.Cluster.NodeID,
			RaftAddress: s.RaftAddr(),
			GrpcAddress: s.grpcAddr,
		})
		return err
	})
}

// askToRemoveSelf asks, through addr, for this node's id to be removed from
// the configuration: an admin call, as joining is.
func (s *Service) askToRemoveSelf(ctx context.Context, addr string) error {
	err := s.callCluster(ctx, addr, 10*time.Second, func(cctx context.Context, c coordinatorv1.ClusterServiceClient) error {
		_, err := c.RemoveServer(cctx, &coordinatorv1.RemoveServerRequest{NodeId: s.cfg.Cluster.NodeID})
		return err
	})
	if status.Code(err) == codes.NotFound {
		return nil // already gone
	}
	return err
}

// withOwnCredential adds this node's own credential (AUTH_TOKEN_FILE) to a
// call it makes on its own behalf: a join, a status probe. Forwarded calls
// never carry it; they carry their caller's.
func (s *Service) withOwnCredential(ctx context.Context) context.Context {
	if tok := s.auth.Token(); tok != "" {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	return ctx
}
