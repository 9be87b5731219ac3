package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/gaia-platform/gaia/agent"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// An agent written in Go works the queue in-process: here a reviewer that
// upper-cases the file named in each task's payload. Run it against `make
// run`; Ctrl-C stops it gracefully.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	review := func(ctx context.Context, t *agent.Task) (map[string]any, error) {
		file := string(t.Payload)
		for _, l := range t.Locks {
			// Pass the fencing token to whatever the lock protects.
			fmt.Printf("holding %s with token %d\n", l.Key, l.FencingToken)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err() // the claim is gone: stop
		}
		return map[string]any{"reviewed": strings.ToUpper(file)}, nil
	}

	err := agent.Run(ctx, agent.Config{
		Coordinator: []string{"127.0.0.1:7001"},
		TaskQueue:   "127.0.0.1:7002",
		Session: &coordinatorv1.RegisterSessionRequest{
			Name:               "go-reviewer",
			Tier:               coordinatorv1.SessionTier_SESSION_TIER_WORKER,
			Provider:           coordinatorv1.Provider_PROVIDER_OTHER,
			MaxConcurrentTasks: 4,
		},
		TaskTypes: []string{"code_review"},
	}, review, func(e agent.Event) { fmt.Println(e.Kind, e.TaskID) })
	if err != nil {
		fmt.Println("stopped:", err)
	}
}
