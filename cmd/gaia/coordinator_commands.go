package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// Where the coordinator commands look for the cluster when not told.
const (
	defaultCoordinatorAddr = "127.0.0.1:7001"
	coordinatorAddrEnv     = "COORDINATOR_ADDR"
	adminTokenEnv          = "CLUSTER_ADMIN_TOKEN"
)

// addCoordinatorCommands adds the cluster, session and lock commands.
func addCoordinatorCommands(root *cobra.Command) {
	root.AddCommand(newClusterCommand(), newSessionCommand(), newLockCommand())
}

// coordinatorFlags are the connection and output flags that every cluster,
// session and lock command takes.
type coordinatorFlags struct {
	addrs      string
	adminToken string
	timeout    time.Duration
	json       bool
}

// newCoordinatorGroup builds a command group (cluster, session, lock) whose
// subcommands share the connection flags. Run bare, it prints its help; with
// an unknown subcommand it is a usage error.
func newCoordinatorGroup(use, short string) (*cobra.Command, *coordinatorFlags) {
	f := &coordinatorFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  wrapArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.addrs, "coordinator", "", "coordinator gRPC addresses, comma-separated; any node will do (default $"+coordinatorAddrEnv+", else "+defaultCoordinatorAddr+")")
	pf.StringVar(&f.adminToken, "admin-token", "", "cluster admin token (default $"+adminTokenEnv+")")
	pf.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the coordinator, retries included")
	pf.BoolVar(&f.json, "json", false, "print the response as one line of JSON (protobuf field names)")
	return cmd, f
}

// connect builds a client from the flags, falling back to the environment.
// A bad address is a usage error when it came from --coordinator and a
// configuration error when it came from the environment.
func (f *coordinatorFlags) connect(cmd *cobra.Command) (*client.Client, error) {
	if f.timeout <= 0 {
		return nil, usageError{fmt.Errorf("--timeout must be positive, got %v", f.timeout)}
	}
	addrs, fromEnv := f.addrs, false
	if !cmd.Flags().Changed("coordinator") {
		addrs = defaultCoordinatorAddr
		if v := strings.TrimSpace(os.Getenv(coordinatorAddrEnv)); v != "" {
			addrs, fromEnv = v, true
		}
	}
	token := f.adminToken
	if !cmd.Flags().Changed("admin-token") {
		token = os.Getenv(adminTokenEnv)
	}
	var list []string
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	c, err := client.New(client.Options{Addrs: list, AdminToken: token})
	if err != nil {
		if fromEnv {
			return nil, configError{fmt.Errorf("%s=%q: want comma-separated host:port addresses", coordinatorAddrEnv, addrs)}
		}
		return nil, usageError{fmt.Errorf("--coordinator %q: want comma-separated host:port addresses", addrs)}
	}
	return c, nil
}

// call connects, runs fn with a context bounded by --timeout plus extra (the
// time the server may legitimately wait, such as a lock's --wait), and turns a
// gRPC error into "<code>: <message>".
func (f *coordinatorFlags) call(cmd *cobra.Command, extra time.Duration, fn func(context.Context, *client.Client) error) error {
	c, err := f.connect(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout+extra)
	defer cancel()
	return asRPCError(fn(ctx, c))
}

// print writes msg as one line of JSON under --json, and as human's output
// otherwise.
func (f *coordinatorFlags) print(w io.Writer, msg proto.Message, human func(io.Writer) error) error {
	if f.json {
		return writeProtoJSON(w, msg)
	}
	return human(w)
}

// writeProtoJSON prints a protobuf message as one line of JSON with the
// proto field names. protojson varies its whitespace on purpose; compacting
// makes the line stable.
func writeProtoJSON(w io.Writer, msg proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// rpcError is a gRPC error as the command line shows it:
// "not_found: session s-1 not found".
type rpcError struct{ st *status.Status }

func (e rpcError) Error() string { return codeName(e.st.Code().String()) + ": " + e.st.Message() }

func asRPCError(err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	var ce configError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return err
	}
	if st, ok := status.FromError(err); ok {
		return rpcError{st}
	}
	return err
}

// codeName turns a Go code name into the canonical lower-case one:
// FailedPrecondition → failed_precondition.
func codeName(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) && unicode.IsLower(rune(s[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// requireFlags reports the named flags that were not given, as a usage error.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if !cmd.Flags().Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageError{fmt.Errorf("missing required flag(s) %s", strings.Join(missing, ", "))}
	}
	return nil
}

// enumPrefix is what every value name of an enum starts with:
// SESSION_TIER_UNSPECIFIED → SESSION_TIER_.
func enumPrefix(d protoreflect.EnumDescriptor) string {
	zero := d.Values().ByNumber(0)
	if zero == nil {
		return ""
	}
	return strings.TrimSuffix(string(zero.Name()), "UNSPECIFIED")
}

// enumShortNames lists the values a flag accepts, in declaration order,
// without UNSPECIFIED.
func enumShortNames(d protoreflect.EnumDescriptor) []string {
	prefix := enumPrefix(d)
	var names []string
	for i := 0; i < d.Values().Len(); i++ {
		if v := d.Values().Get(i); v.Number() != 0 {
			names = append(names, strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix)))
		}
	}
	return names
}

// enumName shows an enum value the way the flags take it: SESSION_STATUS_ACTIVE
// → active. Unset is "-"; a number this build does not know is shown as one.
func enumName(e protoreflect.Enum) string {
	if e.Number() == 0 {
		return "-"
	}
	d := e.Descriptor()
	v := d.Values().ByNumber(e.Number())
	if v == nil {
		return fmt.Sprint(int32(e.Number()))
	}
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), enumPrefix(d)))
}

// parseEnum reads a flag's enum value by its short name (case and '-' for '_'
// do not matter; the full name is accepted too). Anything else is a usage
// error that names the flag and lists what it takes.
func parseEnum(flag, value string, d protoreflect.EnumDescriptor) (protoreflect.EnumNumber, error) {
	want := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(value), "-", "_"))
	prefix := strings.ToLower(enumPrefix(d))
	for i := 0; i < d.Values().Len(); i++ {
		v := d.Values().Get(i)
		if v.Number() == 0 {
			continue
		}
		full := strings.ToLower(string(v.Name()))
		if want != "" && (want == strings.TrimPrefix(full, prefix) || want == full) {
			return v.Number(), nil
		}
	}
	return 0, usageError{fmt.Errorf("invalid value %q for --%s: want one of %s", value, flag, strings.Join(enumShortNames(d), ", "))}
}
