package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

func newSessionCommand() *cobra.Command {
	cmd, f := newCoordinatorGroup("session", "Run and inspect agent sessions")
	cmd.AddCommand(newSessionListCommand(f), newSessionGetCommand(f), newSessionRunCommand(f))
	return cmd
}

// sessionListFlags are the filters of `gaia session list`.
type sessionListFlags struct {
	statuses  []string
	tier      string
	provider  string
	available bool
	labels    []string
	limit     int
}

// request turns the filters into a ListSessionsRequest; bad values are usage
// errors naming the flag.
func (s sessionListFlags) request() (*coordinatorv1.ListSessionsRequest, error) {
	if err := checkLimit(s.limit); err != nil {
		return nil, err
	}
	req := &coordinatorv1.ListSessionsRequest{AvailableOnly: s.available}
	for _, v := range s.statuses {
		n, err := parseEnum("status", v, coordinatorv1.SessionStatus(0).Descriptor())
		if err != nil {
			return nil, err
		}
		req.Statuses = append(req.Statuses, coordinatorv1.SessionStatus(n))
	}
	if s.tier != "" {
		n, err := parseEnum("tier", s.tier, coordinatorv1.SessionTier(0).Descriptor())
		if err != nil {
			return nil, err
		}
		req.Tiers = []coordinatorv1.SessionTier{coordinatorv1.SessionTier(n)}
	}
	if s.provider != "" {
		n, err := parseEnum("provider", s.provider, coordinatorv1.Provider(0).Descriptor())
		if err != nil {
			return nil, err
		}
		req.Providers = []coordinatorv1.Provider{coordinatorv1.Provider(n)}
	}
	for _, kv := range s.labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("invalid value %q for --label: want key=value", kv)}
		}
		if req.Labels == nil {
			req.Labels = map[string]string{}
		}
		req.Labels[k] = v
	}
	return req, nil
}

func newSessionListCommand(f *coordinatorFlags) *cobra.Command {
	var s sessionListFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List sessions, filtered (all pages, up to --limit)",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := s.request()
			if err != nil {
				return err
			}
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := listAllSessions(ctx, c.Sessions(), req, s.limit)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderSessions(w, resp.GetSessions()) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&s.statuses, "status", nil, "only sessions in this state, repeatable: "+strings.Join(enumShortNames(coordinatorv1.SessionStatus(0).Descriptor()), ", ")+" (default all but deregistered)")
	fl.StringVar(&s.tier, "tier", "", "only this tier: "+strings.Join(enumShortNames(coordinatorv1.SessionTier(0).Descriptor()), ", "))
	fl.StringVar(&s.provider, "provider", "", "only this provider: "+strings.Join(enumShortNames(coordinatorv1.Provider(0).Descriptor()), ", "))
	fl.BoolVar(&s.available, "available", false, "only sessions that can take a task now")
	fl.StringArrayVar(&s.labels, "label", nil, "only sessions carrying this label, key=value, repeatable")
	fl.IntVar(&s.limit, "limit", 0, "at most this many sessions (0: all)")
	return cmd
}

// listAllSessions lists up to limit sessions (0: all) as one response; when
// the limit cut the listing short, next_page_token says where it stopped.
func listAllSessions(ctx context.Context, sessions coordinatorv1.SessionServiceClient, req *coordinatorv1.ListSessionsRequest, limit int) (*coordinatorv1.ListSessionsResponse, error) {
	all, next, err := listPages(ctx, limit, func(ctx context.Context, size int32, token string) ([]*coordinatorv1.Session, string, error) {
		req.PageSize, req.PageToken = size, token
		resp, err := sessions.ListSessions(ctx, req)
		return resp.GetSessions(), resp.GetNextPageToken(), err
	})
	if err != nil {
		return nil, err
	}
	return &coordinatorv1.ListSessionsResponse{Sessions: all, NextPageToken: next}, nil
}

func newSessionGetCommand(f *coordinatorFlags) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "get (ID | --name NAME)",
		Short: "Show one session, by id or by the name of a live session",
		Args:  wrapArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := idOrFlag(cmd, args, "a session id", "name")
			if err != nil {
				return err
			}
			req := &coordinatorv1.GetSessionRequest{SessionId: id, Name: name}
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Sessions().GetSession(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderSession(w, resp.GetSession()) })
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the name of a live session")
	return cmd
}
