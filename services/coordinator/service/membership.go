package service

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"

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
// The bootstrap node (pod 0 of a StatefulSet) forms a new cluster only when
// it has no Raft state and every other known node answers that it has no
// configuration either: an empty cluster. A bootstrap node that lost its
// volume while the others kept theirs joins them instead of founding a second
// cluster, and a fresh deployment needs all pods started at once
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
// whose configuration lacks this node, it asks to be added; seeing every
// other node answer with no configuration, the bootstrap node forms the
// cluster. done reports that it did either.
func (s *Service) joinOrForm(ctx context.Context, mayBootstrap bool) (done bool, err error) {
	others, answered, configured := 0, 0, 0
	for _, addr := range s.discoveryNodes(ctx) {
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
	return false, nil
}

func listed(st *coordinatorv1.GetClusterStatusResponse, id, raftAddr string) bool {
	for _, n := range st.GetNodes() {
		if n.GetNodeId() == id && n.GetRaftAddress() == raftAddr {
			return true
		}
	}
	return false
}

func (s *Service) peerStatus(ctx context.Context, addr string) (*coordinatorv1.GetClusterStatusResponse, error) {
	conn, err := s.dialGRPC(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return coordinatorv1.NewClusterServiceClient(conn).GetClusterStatus(s.withOwnCredential(cctx), &coordinatorv1.GetClusterStatusRequest{})
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
	conn, err := s.dialGRPC(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Joining is a membership change: AUTH_TOKEN_FILE must hold an admin
	// credential.
	cctx = s.withOwnCredential(cctx)
	_, err = coordinatorv1.NewClusterServiceClient(conn).AddVoter(cctx, &coordinatorv1.AddVoterRequest{
		NodeId:      s.cfg.Cluster.NodeID,
		RaftAddress: s.RaftAddr(),
		GrpcAddress: s.grpcAddr,
	})
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
