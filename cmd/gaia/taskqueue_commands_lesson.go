package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

func newLessonCommand() *cobra.Command {
	cmd, f := newTaskQueueGroup("lesson", "Create and inspect lessons and their progress")
	cmd.AddCommand(newLessonCreateCommand(f), newLessonListCommand(f), newLessonGetCommand(f), newLessonWatchCommand(f))
	return cmd
}

func newLessonCreateCommand(f *taskQueueFlags) *cobra.Command {
	var req taskqueuev1.CreateLessonRequest
	var priority int
	cmd := &cobra.Command{
		Use:   "create --project P --name N [--objective O] [--priority 0-10]",
		Short: "Create a lesson",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "project", "name"); err != nil {
				return err
			}
			if err := checkIntRange("priority", priority, 0, maxPriority); err != nil {
				return err
			}
			req.Priority = int32(priority)
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.lessons.CreateLesson(ctx, &req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderLesson(w, resp.GetLesson()) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Project, "project", "", "the project (app or repository) the lesson belongs to")
	fl.StringVar(&req.Name, "name", "", "the lesson's name, unique within the project")
	fl.StringVar(&req.Objective, "objective", "", "what students should learn, in plain words")
	fl.IntVar(&priority, "priority", 0, "0 to 10, higher first; orders lessons' tasks of equal task priority")
	return cmd
}

func newLessonListCommand(f *taskQueueFlags) *cobra.Command {
	var project string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--project P] [--limit N]",
		Short: "List lessons with their progress (all pages, up to --limit)",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(limit); err != nil {
				return err
			}
			req := &taskqueuev1.ListLessonsRequest{Project: project}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				lessons, next, err := listPages(ctx, limit, func(ctx context.Context, size int32, token string) ([]*taskqueuev1.Lesson, string, error) {
					req.PageSize, req.PageToken = size, token
					resp, err := c.api.lessons.ListLessons(ctx, req)
					return resp.GetLessons(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				resp := &taskqueuev1.ListLessonsResponse{Lessons: lessons, NextPageToken: next}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderLessons(w, lessons) })
			})
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "only this project's lessons")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many lessons (0: all)")
	return cmd
}

func newLessonGetCommand(f *taskQueueFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a lesson and its progress",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.lessons.GetLesson(ctx, &taskqueuev1.GetLessonRequest{LessonId: args[0]})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderLesson(w, resp.GetLesson()) })
			})
		},
	}
}
