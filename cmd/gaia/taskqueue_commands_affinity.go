package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

func newAffinityCommand() *cobra.Command {
	cmd, f := newTaskQueueGroup("affinity", "Steer sessions towards lessons' tasks")
	cmd.AddCommand(newAffinitySetCommand(f), newAffinityListCommand(f), newAffinityDeleteCommand(f))
	return cmd
}

// affinitySetFlags are the flags of `gaia affinity set`.
type affinitySetFlags struct {
	session string
	lesson  string
	score   float64
	window  string
}

// request turns the flags into a SetSessionAffinityRequest; bad values are
// usage errors naming the flag.
func (a *affinitySetFlags) request(cmd *cobra.Command) (*taskqueuev1.SetSessionAffinityRequest, error) {
	if err := requireFlags(cmd, "session", "lesson", "score"); err != nil {
		return nil, err
	}
	if !(a.score >= 0 && a.score <= maxAffinity) {
		return nil, usageError{fmt.Errorf("invalid value %v for --score: want 0 to %v", a.score, maxAffinity)}
	}
	req := &taskqueuev1.SetSessionAffinityRequest{SessionName: a.session, LessonId: a.lesson, Score: a.score}
	if cmd.Flags().Changed("window") {
		w, err := parseTimeWindow(a.window)
		if err != nil {
			return nil, usageError{fmt.Errorf("invalid value %q for --window: %v; want %s", a.window, err, timeWindowSyntax)}
		}
		req.TimeWindow = w
	}
	return req, nil
}

func newAffinitySetCommand(f *taskQueueFlags) *cobra.Command {
	var a affinitySetFlags
	cmd := &cobra.Command{
		Use:   "set --session NAME --lesson ID --score S [--window 'mon-fri 09:00-17:00 Europe/Paris']",
		Short: "Create or replace a session's affinity for a lesson",
		Long: `Create or replace a session's affinity for a lesson. While the affinity counts, the
session is offered that lesson's tasks before others; among several affinities, the
higher score wins.

--window limits when the affinity counts (default: always):

` + timeWindowHelp,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := a.request(cmd)
			if err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.lessons.SetSessionAffinity(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderAffinity(w, resp.GetAffinity()) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&a.session, "session", "", "the session's name (an affinity outlives the session's restarts)")
	fl.StringVar(&a.lesson, "lesson", "", "the lesson's id")
	fl.Float64Var(&a.score, "score", 0, "0 to 100; among several affinities, a higher score is preferred")
	fl.StringVar(&a.window, "window", "", "when the affinity counts, "+timeWindowSyntax+" (default always)")
	return cmd
}

func newAffinityListCommand(f *taskQueueFlags) *cobra.Command {
	var req taskqueuev1.ListSessionAffinitiesRequest
	cmd := &cobra.Command{
		Use:   "list (--session NAME | --lesson ID)",
		Short: "List a session's or a lesson's affinities (all pages)",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.SessionName == "" && req.LessonId == "" {
				return usageError{errors.New("give --session or --lesson")}
			}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				affinities, _, err := listPages(ctx, 0, func(ctx context.Context, size int32, token string) ([]*taskqueuev1.SessionAffinity, string, error) {
					req.PageSize, req.PageToken = size, token
					resp, err := c.api.lessons.ListSessionAffinities(ctx, &req)
					return resp.GetAffinities(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				resp := &taskqueuev1.ListSessionAffinitiesResponse{Affinities: affinities}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderAffinities(w, affinities) })
			})
		},
	}
	cmd.Flags().StringVar(&req.SessionName, "session", "", "only this session name's affinities")
	cmd.Flags().StringVar(&req.LessonId, "lesson", "", "only this lesson's affinities")
	return cmd
}

func newAffinityDeleteCommand(f *taskQueueFlags) *cobra.Command {
	var req taskqueuev1.DeleteSessionAffinityRequest
	cmd := &cobra.Command{
		Use:   "delete --session NAME --lesson ID",
		Short: "Remove a session's affinity for a lesson",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "session", "lesson"); err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.lessons.DeleteSessionAffinity(ctx, &req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "deleted the affinity of session %s for lesson %s\n", req.GetSessionName(), req.GetLessonId())
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&req.SessionName, "session", "", "the session's name")
	cmd.Flags().StringVar(&req.LessonId, "lesson", "", "the lesson's id")
	return cmd
}
