// Command gaia is GAIA's command line. Output is for people; --json is for
// scripts. The commands, and the files that hold them:
//
//	gaia up                                       run all five services, a single-node Raft and PostgreSQL on this machine (up.go, up_services.go, up_auth.go)
//	gaia migrate                                  create the database if needed and apply every schema's migrations (migrate.go)
//	gaia certs dev                                make a local CA and a certificate per service (certs.go)
//	gaia version                                  print which build this is (version.go)
//	gaia cluster status|join|remove|transfer      the coordinator's Raft cluster (coordinator_commands_cluster.go)
//	gaia session list|get|run                     agent sessions; run turns a command into one (coordinator_commands_session.go, session_run.go)
//	gaia lock list|acquire|release                distributed locks (coordinator_commands_lock.go)
//	gaia auth issue|list|revoke|keys              credentials: issue, list and revoke them; make a signing key pair (auth_commands.go)
//	gaia task enqueue|get|list|cancel|retry       tasks (taskqueue_commands_task.go)
//	gaia lesson create|get|list|watch             lessons and their progress (taskqueue_commands_lesson.go, lesson_watch.go)
//	gaia affinity set|list|delete                 session affinities (taskqueue_commands_affinity.go, taskqueue_commands_window.go)
//	gaia metrics send                             usability events from JSON lines (metrics_commands.go)
//	gaia ratings summary                          students' ratings (metrics_commands.go)
//	gaia classroom snapshots                      a classroom's per-minute rollups (metrics_commands.go)
//	gaia detect watch|settings get|set            frustration events and detection settings (detect_commands.go)
//	gaia teacher assign|unassign|classrooms       teachers' classrooms (dashboard_commands.go)
//	gaia alerts list|watch|ack|resolve|intervene  teachers' alerts (dashboard_commands.go)
//
// What the commands share: rpc_flags.go (--timeout, --json, address flags,
// serviceFlags for a one-address service, calling it, errors, page tokens),
// enum_flags.go (enum values by short name), transport.go (TLS towards the
// services), output.go (--json), render_format.go and the *_render.go files
// (human output).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitFailure   = 1
	exitBadConfig = 2
	exitUsage     = 64
)

// configError marks an error in the environment's configuration.
type configError struct{ err error }

func (e configError) Error() string { return "invalid configuration: " + e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// usageError marks a command used wrongly.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "gaia: %v\n", err)
	var ce configError
	var ue usageError
	switch {
	case errors.As(err, &ce):
		return exitBadConfig
	case errors.As(err, &ue):
		return exitUsage
	default:
		return exitFailure
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "gaia",
		Short:         "Coordinate AI coding-agent sessions and watch how students experience their apps",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	addTokenFlag(root)
	root.AddCommand(newUpCommand(), newMigrateCommand(), newVersionCommand(), newCertsCommand())
	addCoordinatorCommands(root)
	addTaskQueueCommands(root)
	addMetricsCommands(root)
	addDashboardCommands(root)
	addDetectCommands(root)
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// wrapArgs turns an argument validator's complaint into a usage error.
func wrapArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	if v == nil {
		v = cobra.NoArgs
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
