package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// Where the coordinator commands look for the cluster when not told.
const (
	defaultCoordinatorAddr = "127.0.0.1:7001"
	coordinatorAddrEnv     = "COORDINATOR_ADDR"
)

// addCoordinatorCommands adds the cluster, session and lock commands.
func addCoordinatorCommands(root *cobra.Command) {
	root.AddCommand(newClusterCommand(), newSessionCommand(), newLockCommand(), newAuthCommand())
}

// coordinatorFlags are the connection and output flags that every cluster,
// session and lock command takes.
type coordinatorFlags struct {
	rpcFlags
	addrs addrFlag
}

// newCoordinatorGroup builds a command group (cluster, session, lock) whose
// subcommands share the connection flags.
func newCoordinatorGroup(use, short string) (*cobra.Command, *coordinatorFlags) {
	f := &coordinatorFlags{addrs: addrFlag{flag: "coordinator", env: coordinatorAddrEnv, def: defaultCoordinatorAddr}}
	cmd := newCommandGroup(use, short)
	pf := cmd.PersistentFlags()
	f.addrs.register(pf, "coordinator gRPC addresses, comma-separated; any node will do")
	f.register(pf, "the coordinator, retries included")
	return cmd, f
}

// connect builds a client from the flags, falling back to the environment.
func (f *coordinatorFlags) connect(cmd *cobra.Command) (*client.Client, error) {
	list, badAddrs := f.addrList(cmd)
	dialOpts, err := cliDialOptions()
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Options{Addrs: list, Token: cliToken(cmd), DialOptions: dialOpts})
	if err != nil {
		return nil, badAddrs
	}
	return c, nil
}

// addrList is the coordinator addresses from the flags or the environment,
// and the error to report should they not parse.
func (f *coordinatorFlags) addrList(cmd *cobra.Command) ([]string, error) {
	addrs, badAddrs := f.addrs.resolve(cmd, "comma-separated host:port addresses")
	var list []string
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	return list, badAddrs
}

// call runs fn against the coordinator; see callService.
func (f *coordinatorFlags) call(cmd *cobra.Command, extra time.Duration, fn func(context.Context, *client.Client) error) error {
	return callService(cmd, &f.rpcFlags, extra, f.connect, fn)
}
