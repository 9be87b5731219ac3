// Command gaia is GAIA's command line: `gaia up` runs the whole system on one
// machine, `gaia migrate` brings the database schemas up to date, and `gaia
// version` says which build this is. Output is for people; --json is for scripts.
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
	root.AddCommand(newUpCommand(), newMigrateCommand(), newVersionCommand(), newCertsCommand())
	addCoordinatorCommands(root)
	addTaskQueueCommands(root)
	addMetricsCommands(root)
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
