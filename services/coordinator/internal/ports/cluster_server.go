package ports

import (
	"context"

	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
)

type clusterServer struct {
	coordinatorv1.UnimplementedClusterServiceServer
	*Servers
}

// GetClusterStatus is answered by whichever node is asked, from its own view.
func (s *clusterServer) GetClusterStatus(ctx context.Context, _ *coordinatorv1.GetClusterStatusRequest) (*coordinatorv1.GetClusterStatusResponse, error) {
	st, err := s.App.Status(ctx)
	if err != nil {
		return nil, err
	}
	resp := &coordinatorv1.GetClusterStatusResponse{
		Term:         st.Term,
		CommitIndex:  st.CommitIndex,
		AppliedIndex: st.AppliedIndex,
		LastLogIndex: st.LastLogIndex,
		AnsweredBy:   st.AnsweredBy,
		Sessions:     int64(st.Sessions),
		Locks:        int64(st.Locks),
		Nodes:        nodesToProto(st.Nodes),
		StorageError: st.StorageError,
	}
	if st.LeaderID != "" {
		resp.Leader = &coordinatorv1.LeaderInfo{NodeId: st.LeaderID, RaftAddress: st.LeaderAddress, GrpcAddress: st.LeaderGRPCAddress}
	}
	if ss := st.LastSnapshot; ss != nil {
		resp.LastSnapshot = &coordinatorv1.Snapshot{Id: ss.ID, Index: ss.Index, Term: ss.Term, SizeBytes: ss.Size, TakenAt: timestamp(ss.TakenAt)}
	}
	return resp, nil
}

func (s *clusterServer) AddVoter(ctx context.Context, req *coordinatorv1.AddVoterRequest) (*coordinatorv1.AddVoterResponse, error) {
	if req.GetNodeId() == "" {
		return nil, domainerr.Invalid("node_id", "must not be empty")
	}
	if err := reqfield.Text("node_id", req.GetNodeId()); err != nil {
		return nil, err
	}
	if err := validateHostPort("raft_address", req.GetRaftAddress(), true); err != nil {
		return nil, err
	}
	if err := validateHostPort("grpc_address", req.GetGrpcAddress(), false); err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.AddVoterResponse, error) {
		return coordinatorv1.NewClusterServiceClient(conn).AddVoter(fctx, req)
	}, func() (*coordinatorv1.AddVoterResponse, error) {
		nodes, err := s.App.AddVoter(ctx, req.GetNodeId(), req.GetRaftAddress(), req.GetGrpcAddress())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.AddVoterResponse{Nodes: nodesToProto(nodes)}, nil
	})
}

func (s *clusterServer) RemoveServer(ctx context.Context, req *coordinatorv1.RemoveServerRequest) (*coordinatorv1.RemoveServerResponse, error) {
	if req.GetNodeId() == "" {
		return nil, domainerr.Invalid("node_id", "must not be empty")
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.RemoveServerResponse, error) {
		return coordinatorv1.NewClusterServiceClient(conn).RemoveServer(fctx, req)
	}, func() (*coordinatorv1.RemoveServerResponse, error) {
		nodes, err := s.App.RemoveServer(ctx, req.GetNodeId())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.RemoveServerResponse{Nodes: nodesToProto(nodes)}, nil
	})
}

func (s *clusterServer) TransferLeadership(ctx context.Context, req *coordinatorv1.TransferLeadershipRequest) (*coordinatorv1.TransferLeadershipResponse, error) {
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.TransferLeadershipResponse, error) {
		return coordinatorv1.NewClusterServiceClient(conn).TransferLeadership(fctx, req)
	}, func() (*coordinatorv1.TransferLeadershipResponse, error) {
		id, addr, err := s.App.TransferLeadership(ctx, req.GetNodeId())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.TransferLeadershipResponse{Leader: &coordinatorv1.LeaderInfo{NodeId: id, GrpcAddress: addr}}, nil
	})
}

func nodesToProto(nodes []app.NodeStatus) []*coordinatorv1.Node {
	out := make([]*coordinatorv1.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, &coordinatorv1.Node{
			NodeId:        n.ID,
			RaftAddress:   n.RaftAddress,
			Suffrage:      suffrageToProto(n.Suffrage),
			State:         nodeStateToProto(n.State),
			LastContactAt: timestamp(n.LastContact),
		})
	}
	return out
}
