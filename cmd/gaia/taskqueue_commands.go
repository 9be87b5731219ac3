package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// Where the task, lesson and affinity commands look for the task queue when
// not told.
const (
	defaultTaskQueueAddr = "127.0.0.1:7002"
	taskQueueAddrEnv     = "TASKQUEUE_ADDR"
)

// The bounds the task queue's API documents, checked here too so that a bad
// flag is a usage error before any call.
const (
	maxPriority     = 10
	maxTaskAttempts = 100
	minClaimTimeout = time.Second
	maxClaimTimeout = 24 * time.Hour
	maxAffinity     = 100.0
)

// addTaskQueueCommands adds the task, lesson and affinity commands.
func addTaskQueueCommands(root *cobra.Command) {
	root.AddCommand(newTaskCommand(), newLessonCommand(), newAffinityCommand())
}

// taskQueueStubs are the task queue's two services.
type taskQueueStubs struct {
	tasks   taskqueuev1.TaskServiceClient
	lessons taskqueuev1.LessonServiceClient
}

// taskQueueFlags and taskQueueClient are the connection flags and client of
// every task, lesson and affinity command (see serviceFlags).
type (
	taskQueueFlags  = serviceFlags[taskQueueStubs]
	taskQueueClient = serviceClient[taskQueueStubs]
)

// newTaskQueueGroup builds a command group (task, lesson, affinity) whose
// subcommands share the connection flags.
func newTaskQueueGroup(use, short string) (*cobra.Command, *taskQueueFlags) {
	return newServiceGroup(use, short, addrFlag{flag: "taskqueue", env: taskQueueAddrEnv, def: defaultTaskQueueAddr},
		"task queue gRPC address, host:port", "the task queue", func(conn grpc.ClientConnInterface) taskQueueStubs {
			return taskQueueStubs{tasks: taskqueuev1.NewTaskServiceClient(conn), lessons: taskqueuev1.NewLessonServiceClient(conn)}
		})
}

// checkIntRange rejects an integer flag outside lo..hi.
func checkIntRange(flag string, v, lo, hi int) error {
	if v < lo || v > hi {
		return usageError{fmt.Errorf("invalid value %d for --%s: want %d to %d", v, flag, lo, hi)}
	}
	return nil
}

// whenFlags are --run-at and --delay, two ways to say when a task may run.
type whenFlags struct {
	runAt string
	delay time.Duration
}

func (w *whenFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&w.runAt, "run-at", "", "not claimable before this RFC 3339 time (default now)")
	fs.DurationVar(&w.delay, "delay", 0, "not claimable before this long from now, such as 5m (instead of --run-at)")
}

// timestamp is the time the flags ask for, counting --delay from now; nil
// when neither was given, which the server takes as now.
func (w *whenFlags) timestamp(cmd *cobra.Command, now time.Time) (*timestamppb.Timestamp, error) {
	atGiven, delayGiven := cmd.Flags().Changed("run-at"), cmd.Flags().Changed("delay")
	switch {
	case atGiven && delayGiven:
		return nil, usageError{fmt.Errorf("give --run-at or --delay, not both")}
	case atGiven:
		t, err := time.Parse(time.RFC3339, w.runAt)
		if err != nil {
			return nil, usageError{fmt.Errorf("invalid value %q for --run-at: want an RFC 3339 time such as 2026-03-14T09:30:00Z", w.runAt)}
		}
		return timestamppb.New(t), nil
	case delayGiven:
		if w.delay < 0 {
			return nil, usageError{fmt.Errorf("invalid value %v for --delay: want zero or a positive duration", w.delay)}
		}
		return timestamppb.New(now.Add(w.delay)), nil
	}
	return nil, nil
}

// payloadFlags are --payload and --payload-file; either may be "-" for
// standard input.
type payloadFlags struct {
	inline string
	file   string
}

func (p *payloadFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.inline, "payload", "", `the task's input, a JSON object such as '{"repo":"web"}'; "-" reads it from standard input`)
	fs.StringVar(&p.file, "payload-file", "", `read the payload from this file ("-": standard input)`)
}

// read returns the payload the flags give, nil when none.
func (p *payloadFlags) read(cmd *cobra.Command) (*structpb.Struct, error) {
	inlineGiven, fileGiven := cmd.Flags().Changed("payload"), cmd.Flags().Changed("payload-file")
	switch {
	case inlineGiven && fileGiven:
		return nil, usageError{fmt.Errorf("give --payload or --payload-file, not both")}
	case inlineGiven && p.inline != "-":
		return parsePayload("payload", []byte(p.inline))
	case inlineGiven, fileGiven && p.file == "-":
		flag := "payload"
		if fileGiven {
			flag = "payload-file"
		}
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read the payload from standard input: %w", err)
		}
		return parsePayload(flag, data)
	case fileGiven:
		data, err := os.ReadFile(p.file)
		if err != nil {
			return nil, usageError{fmt.Errorf("invalid value for --payload-file: %w", err)}
		}
		return parsePayload("payload-file", data)
	}
	return nil, nil
}

// parsePayload reads a JSON object; anything else is a usage error naming the
// flag it came from.
func parsePayload(flag string, data []byte) (*structpb.Struct, error) {
	var s structpb.Struct
	if err := protojson.Unmarshal(data, &s); err != nil {
		return nil, usageError{fmt.Errorf("invalid value for --%s: want a JSON object: %v", flag, err)}
	}
	return &s, nil
}
