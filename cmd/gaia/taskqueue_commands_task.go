package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

func newTaskCommand() *cobra.Command {
	cmd, f := newTaskQueueGroup("task", "Enqueue, inspect, cancel and retry tasks")
	cmd.AddCommand(newTaskEnqueueCommand(f), newTaskListCommand(f), newTaskGetCommand(f), newTaskCancelCommand(f), newTaskRetryCommand(f))
	return cmd
}

// taskEnqueueFlags are the flags of `gaia task enqueue`.
type taskEnqueueFlags struct {
	taskType     string
	key          string
	payload      payloadFlags
	priority     int
	lesson       string
	when         whenFlags
	maxAttempts  int
	claimTimeout time.Duration
}

// request turns the flags into an EnqueueTaskRequest, counting --delay from
// now; bad values are usage errors naming the flag. Flags not given are left
// unset for the server's defaults.
func (e *taskEnqueueFlags) request(cmd *cobra.Command, now time.Time) (*taskqueuev1.EnqueueTaskRequest, error) {
	if err := requireFlags(cmd, "type", "key"); err != nil {
		return nil, err
	}
	if err := checkIntRange("priority", e.priority, 0, maxPriority); err != nil {
		return nil, err
	}
	req := &taskqueuev1.EnqueueTaskRequest{
		IdempotencyKey: e.key,
		TaskType:       e.taskType,
		Priority:       int32(e.priority),
		LessonId:       e.lesson,
	}
	if cmd.Flags().Changed("max-attempts") {
		if err := checkIntRange("max-attempts", e.maxAttempts, 1, maxTaskAttempts); err != nil {
			return nil, err
		}
		req.MaxAttempts = int32(e.maxAttempts)
	}
	if cmd.Flags().Changed("claim-timeout") {
		if e.claimTimeout < minClaimTimeout || e.claimTimeout > maxClaimTimeout {
			return nil, usageError{fmt.Errorf("invalid value %v for --claim-timeout: want %v to %v", e.claimTimeout, minClaimTimeout, maxClaimTimeout)}
		}
		req.ClaimTimeout = durationpb.New(e.claimTimeout)
	}
	var err error
	if req.RunAt, err = e.when.timestamp(cmd, now); err != nil {
		return nil, err
	}
	if req.Payload, err = e.payload.read(cmd); err != nil {
		return nil, err
	}
	return req, nil
}

func newTaskEnqueueCommand(f *taskQueueFlags) *cobra.Command {
	var e taskEnqueueFlags
	cmd := &cobra.Command{
		Use:   "enqueue --type T --key K [--payload JSON | --payload-file F] [--priority 0-10] [--lesson ID] [--run-at TIME | --delay 5m] [--max-attempts N] [--claim-timeout 10m]",
		Short: "Add a task; enqueueing a key again returns the existing task and changes nothing",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := e.request(cmd, time.Now())
			if err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.tasks.EnqueueTask(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					if resp.GetDuplicate() {
						fmt.Fprintf(w, "duplicate: key %q already names task %s; nothing was changed\n\n", resp.GetTask().GetIdempotencyKey(), resp.GetTask().GetTaskId())
					} else {
						fmt.Fprintf(w, "enqueued task %s\n\n", resp.GetTask().GetTaskId())
					}
					return renderTask(w, resp.GetTask())
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&e.taskType, "type", "", "what kind of work this is, such as code_review")
	fl.StringVar(&e.key, "key", "", "idempotency key: the same key always names the same task")
	e.payload.register(fl)
	fl.IntVar(&e.priority, "priority", 0, "0 to 10, higher first")
	fl.StringVar(&e.lesson, "lesson", "", "the lesson the task belongs to")
	e.when.register(fl)
	fl.IntVar(&e.maxAttempts, "max-attempts", 0, "attempts before the task is dead, 1 to 100 (default the server's TASK_MAX_RETRIES)")
	fl.DurationVar(&e.claimTimeout, "claim-timeout", 0, "lease length of a claim, 1s to 24h (default the server's TASK_CLAIM_TIMEOUT)")
	return cmd
}

// taskListFlags are the filters of `gaia task list`.
type taskListFlags struct {
	states  []string
	types   []string
	lesson  string
	session string
	limit   int
}

// request turns the filters into a ListTasksRequest; bad values are usage
// errors naming the flag.
func (l taskListFlags) request() (*taskqueuev1.ListTasksRequest, error) {
	if err := checkLimit(l.limit); err != nil {
		return nil, err
	}
	req := &taskqueuev1.ListTasksRequest{TaskTypes: l.types, LessonId: l.lesson, ClaimedBySessionId: l.session}
	for _, v := range l.states {
		n, err := parseEnum("state", v, taskqueuev1.TaskState(0).Descriptor())
		if err != nil {
			return nil, err
		}
		req.States = append(req.States, taskqueuev1.TaskState(n))
	}
	return req, nil
}

func newTaskListCommand(f *taskQueueFlags) *cobra.Command {
	var l taskListFlags
	cmd := &cobra.Command{
		Use:   "list [--state S]... [--type T]... [--lesson ID] [--session ID] [--limit N]",
		Short: "List tasks, newest first, filtered (all pages, up to --limit)",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := l.request()
			if err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				tasks, next, err := listPages(ctx, l.limit, func(ctx context.Context, size int32, token string) ([]*taskqueuev1.Task, string, error) {
					req.PageSize, req.PageToken = size, token
					resp, err := c.api.tasks.ListTasks(ctx, req)
					return resp.GetTasks(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				resp := &taskqueuev1.ListTasksResponse{Tasks: tasks, NextPageToken: next}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderTasks(w, tasks) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&l.states, "state", nil, "only tasks in this state, repeatable: "+strings.Join(enumShortNames(taskqueuev1.TaskState(0).Descriptor()), ", "))
	fl.StringSliceVar(&l.types, "type", nil, "only tasks of this type, repeatable")
	fl.StringVar(&l.lesson, "lesson", "", "only this lesson's tasks")
	fl.StringVar(&l.session, "session", "", "only tasks claimed by this session id")
	fl.IntVar(&l.limit, "limit", 0, "at most this many tasks (0: all)")
	return cmd
}

func newTaskGetCommand(f *taskQueueFlags) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "get (ID | --key K)",
		Short: "Show one task, by id or by idempotency key",
		Args:  wrapArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := idOrFlag(cmd, args, "a task id", "key")
			if err != nil {
				return err
			}
			req := &taskqueuev1.GetTaskRequest{TaskId: id, IdempotencyKey: key}
			if id != "" {
				req.IdempotencyKey = ""
			}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.tasks.GetTask(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderTask(w, resp.GetTask()) })
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the task's idempotency key")
	return cmd
}

func newTaskCancelCommand(f *taskQueueFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel ID [--reason R]",
		Short: "Cancel a task that has not finished",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &taskqueuev1.CancelTaskRequest{TaskId: args[0], Reason: reason}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.tasks.CancelTask(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					fmt.Fprintf(w, "cancelled task %s\n\n", resp.GetTask().GetTaskId())
					return renderTask(w, resp.GetTask())
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept as the task's last error")
	return cmd
}

func newTaskRetryCommand(f *taskQueueFlags) *cobra.Command {
	var reset bool
	var when whenFlags
	cmd := &cobra.Command{
		Use:   "retry ID [--reset-attempts] [--run-at TIME | --delay 5m]",
		Short: "Bring a dead or cancelled task back to pending",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			runAt, err := when.timestamp(cmd, time.Now())
			if err != nil {
				return err
			}
			req := &taskqueuev1.RetryTaskRequest{TaskId: args[0], ResetAttempts: reset, RunAt: runAt}
			return f.call(cmd, func(ctx context.Context, c *taskQueueClient) error {
				resp, err := c.api.tasks.RetryTask(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					fmt.Fprintf(w, "task %s is pending again\n\n", resp.GetTask().GetTaskId())
					return renderTask(w, resp.GetTask())
				})
			})
		},
	}
	cmd.Flags().BoolVar(&reset, "reset-attempts", false, "count attempts from zero again (default: allow one more attempt)")
	when.register(cmd.Flags())
	return cmd
}
