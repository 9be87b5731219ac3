package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

func newClusterCommand() *cobra.Command {
	cmd, f := newCoordinatorGroup("cluster", "Inspect and change the coordinator's Raft cluster")
	cmd.AddCommand(newClusterStatusCommand(f), newClusterJoinCommand(f), newClusterRemoveCommand(f), newClusterTransferCommand(f))
	return cmd
}

func newClusterStatusCommand(f *coordinatorFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the leader, the Raft indexes and every node",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cluster().GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderClusterStatus(w, resp) })
			})
		},
	}
}

func newClusterJoinCommand(f *coordinatorFlags) *cobra.Command {
	var nodeID, raftAddr, grpcAddr string
	cmd := &cobra.Command{
		Use:   "join --node-id ID --raft-addr HOST:PORT [--grpc-addr HOST:PORT]",
		Short: "Add a node to the cluster as a voter",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "node-id", "raft-addr"); err != nil {
				return err
			}
			if err := checkHostPort("raft-addr", raftAddr); err != nil {
				return err
			}
			if grpcAddr != "" {
				if err := checkHostPort("grpc-addr", grpcAddr); err != nil {
					return err
				}
			}
			req := &coordinatorv1.AddVoterRequest{NodeId: nodeID, RaftAddress: raftAddr, GrpcAddress: grpcAddr}
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cluster().AddVoter(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					fmt.Fprintf(w, "%s is a voter\n\n", nodeID)
					return renderNodes(w, resp.GetNodes())
				})
			})
		},
	}
	cmd.Flags().StringVar(&nodeID, "node-id", "", "the new node's id (its CLUSTER_NODE_ID)")
	cmd.Flags().StringVar(&raftAddr, "raft-addr", "", "the new node's Raft address (its CLUSTER_ADVERTISE_ADDR)")
	cmd.Flags().StringVar(&grpcAddr, "grpc-addr", "", "the new node's gRPC address, for clients looking for the leader")
	return cmd
}

func newClusterRemoveCommand(f *coordinatorFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NODE_ID",
		Short: "Remove a node from the cluster",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cluster().RemoveServer(ctx, &coordinatorv1.RemoveServerRequest{NodeId: args[0]})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					fmt.Fprintf(w, "%s removed\n\n", args[0])
					return renderNodes(w, resp.GetNodes())
				})
			})
		},
	}
}

func newClusterTransferCommand(f *coordinatorFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer [NODE_ID]",
		Short: "Hand leadership to another voter (the most up-to-date one when none is named)",
		Args:  wrapArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &coordinatorv1.TransferLeadershipRequest{}
			if len(args) == 1 {
				req.NodeId = args[0]
			}
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Cluster().TransferLeadership(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "leader: %s\n", formatLeader(resp.GetLeader()))
					return err
				})
			})
		},
	}
}

// checkHostPort rejects a flag value that is not host:port.
func checkHostPort(flag, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" || port == "" {
		return usageError{fmt.Errorf("invalid value %q for --%s: want host:port", v, flag)}
	}
	return nil
}
