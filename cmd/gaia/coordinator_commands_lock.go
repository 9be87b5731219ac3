package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

func newLockCommand() *cobra.Command {
	cmd, f := newCoordinatorGroup("lock", "Inspect, take and release distributed locks")
	cmd.AddCommand(newLockListCommand(f), newLockAcquireCommand(f), newLockReleaseCommand(f))
	return cmd
}

func newLockListCommand(f *coordinatorFlags) *cobra.Command {
	var prefix, owner string
	cmd := &cobra.Command{
		Use:   "list [--prefix P] [--owner SESSION_ID]",
		Short: "List held locks (all pages)",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &coordinatorv1.ListLocksRequest{Prefix: prefix, OwnerSessionId: owner}
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := listAllLocks(ctx, c.Locks(), req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderLocks(w, resp.GetLocks()) })
			})
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "only keys that start with this")
	cmd.Flags().StringVar(&owner, "owner", "", "only locks held by this session id")
	return cmd
}

// listAllLocks lists every lock as one response.
func listAllLocks(ctx context.Context, locks coordinatorv1.LockServiceClient, req *coordinatorv1.ListLocksRequest) (*coordinatorv1.ListLocksResponse, error) {
	all, _, err := listPages(ctx, 0, func(ctx context.Context, size int32, token string) ([]*coordinatorv1.Lock, string, error) {
		req.PageSize, req.PageToken = size, token
		resp, err := locks.ListLocks(ctx, req)
		return resp.GetLocks(), resp.GetNextPageToken(), err
	})
	if err != nil {
		return nil, err
	}
	return &coordinatorv1.ListLocksResponse{Locks: all}, nil
}

func newLockAcquireCommand(f *coordinatorFlags) *cobra.Command {
	var sessionID, token string
	var ttl, wait time.Duration
	cmd := &cobra.Command{
		Use:   "acquire KEY --session-id ID --session-token TOKEN --ttl 30s [--wait 10s]",
		Short: "Take a lock for a session and print its fencing token",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "session-id", "session-token", "ttl"); err != nil {
				return err
			}
			if ttl <= 0 {
				return usageError{fmt.Errorf("invalid value %v for --ttl: want a positive duration", ttl)}
			}
			if wait < 0 {
				return usageError{fmt.Errorf("invalid value %v for --wait: want zero or a positive duration", wait)}
			}
			req := &coordinatorv1.AcquireLockRequest{
				Key:          args[0],
				SessionId:    sessionID,
				SessionToken: token,
				Ttl:          durationpb.New(ttl),
				WaitTimeout:  durationpb.New(wait),
			}
			// The server may wait the whole --wait before answering; --timeout
			// is for reaching it.
			return f.call(cmd, wait, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Locks().AcquireLock(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderLock(w, resp.GetLock()) })
			})
		},
	}
	cmd.Flags().StringVar(&sessionID, "session-id", "", "the session that takes the lock")
	cmd.Flags().StringVar(&token, "session-token", "", "that session's token")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the lock lasts without a renewal (1s to 24h)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "how long to wait while another session holds it (0: fail at once)")
	return cmd
}

func newLockReleaseCommand(f *coordinatorFlags) *cobra.Command {
	var sessionID, token string
	var fencing uint64
	cmd := &cobra.Command{
		Use:   "release KEY --session-id ID --session-token TOKEN --fencing-token N",
		Short: "Release a lock the session holds",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "session-id", "session-token", "fencing-token"); err != nil {
				return err
			}
			req := &coordinatorv1.ReleaseLockRequest{Key: args[0], SessionId: sessionID, SessionToken: token, FencingToken: fencing}
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Locks().ReleaseLock(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					if next := resp.GetNextOwnerSessionId(); next != "" {
						_, err := fmt.Fprintf(w, "released %s; it went to session %s\n", args[0], next)
						return err
					}
					_, err := fmt.Fprintf(w, "released %s\n", args[0])
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&sessionID, "session-id", "", "the session that holds the lock")
	cmd.Flags().StringVar(&token, "session-token", "", "that session's token")
	cmd.Flags().Uint64Var(&fencing, "fencing-token", 0, "the fencing token the lock was granted with")
	return cmd
}
