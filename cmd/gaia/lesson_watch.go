package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

func newLessonWatchCommand(f *taskQueueFlags) *cobra.Command {
	var every time.Duration
	var forever bool
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Show a lesson's progress live until it reaches 100 %",
		Long: `Polls the lesson and redraws its progress bar in place (a new line per change
when the output is not a terminal, one JSON object per change with --json). It
ends when every task of the lesson has completed, or on Ctrl-C; --forever keeps
watching past 100 %.`,
		Args: wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if every <= 0 {
				return usageError{fmt.Errorf("--every must be positive, got %v", every)}
			}
			c, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return watchLesson(cmd.Context(), c.api.lessons, args[0], every, forever, f.json, f.timeout, cmd.OutOrStdout(), isTerminal(cmd.OutOrStdout()))
		},
	}
	cmd.Flags().DurationVar(&every, "every", 500*time.Millisecond, "how often to look")
	cmd.Flags().BoolVar(&forever, "forever", false, "keep watching after the lesson reaches 100 %")
	return cmd
}

func watchLesson(ctx context.Context, lessons taskqueuev1.LessonServiceClient, id string, every time.Duration, forever, asJSON bool, timeout time.Duration, w io.Writer, tty bool) error {
	var last *taskqueuev1.Lesson
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		resp, err := lessons.GetLesson(cctx, &taskqueuev1.GetLessonRequest{LessonId: id})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return asRPCError(err)
		}
		l := resp.GetLesson()
		changed := last == nil || !proto.Equal(counts(last), counts(l))
		if changed {
			switch {
			case asJSON:
				if err := writeProtoJSON(w, l); err != nil {
					return err
				}
			case tty:
				fmt.Fprintf(w, "\r\033[K%s  %s", l.GetName(), progressBar(l))
			default:
				fmt.Fprintf(w, "%s  %s\n", l.GetName(), progressBar(l))
			}
			last = l
		}
		done := l.GetTasksTotal() > 0 && l.GetTasksCompleted() == l.GetTasksTotal()
		if done && !forever {
			if tty && !asJSON {
				fmt.Fprintln(w)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if tty && !asJSON {
				fmt.Fprintln(w)
			}
			return nil
		case <-tick.C:
		}
	}
}

// counts is the part of a lesson the watch redraws on.
func counts(l *taskqueuev1.Lesson) *taskqueuev1.Lesson {
	return &taskqueuev1.Lesson{TasksTotal: l.GetTasksTotal(), TasksCompleted: l.GetTasksCompleted(), TasksDead: l.GetTasksDead()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
