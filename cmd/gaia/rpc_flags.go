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
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/gaia-platform/gaia/internal/grpcclient"
)

// The plumbing every command that calls a GAIA service shares, whichever
// service it calls: the --timeout/--json and address flags, the call with its
// deadline, errors as "<code>: <message>", argument and flag checks, and
// following page tokens.

// rpcFlags are the flags that every command calling a GAIA service takes
// besides the service's address: how long to wait and how to print.
type rpcFlags struct {
	timeout time.Duration
	json    bool
}

// register adds --timeout and --json to a command group's persistent flags;
// waitsFor ends the help of --timeout: "how long to wait for …".
func (f *rpcFlags) register(pf *pflag.FlagSet, waitsFor string) {
	pf.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for "+waitsFor)
	pf.BoolVar(&f.json, "json", false, "print the response as one line of JSON (protobuf field names)")
}

// print writes msg as one line of JSON under --json, and as human's output
// otherwise.
func (f *rpcFlags) print(w io.Writer, msg proto.Message, human func(io.Writer) error) error {
	if f.json {
		return writeProtoJSON(w, msg)
	}
	return human(w)
}

// callService builds a client with connect, runs fn with a context bounded by
// --timeout plus extra (the time the server may legitimately wait, such as a
// lock's --wait), closes the client, and turns a gRPC error into
// "<code>: <message>".
func callService[C io.Closer](cmd *cobra.Command, f *rpcFlags, extra time.Duration, connect func(*cobra.Command) (C, error), fn func(context.Context, C) error) error {
	if f.timeout <= 0 {
		return usageError{fmt.Errorf("--timeout must be positive, got %v", f.timeout)}
	}
	c, err := connect(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout+extra)
	defer cancel()
	return asRPCError(fn(ctx, c))
}

// newCommandGroup builds a command group (cluster, task, …) that only holds
// subcommands. Run bare, it prints its help; with an unknown subcommand it is
// a usage error.
func newCommandGroup(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  wrapArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// addrFlag is a service's address flag with its fallbacks: the flag when
// given, else the environment variable, else a default.
type addrFlag struct {
	flag, env, def string
	value          string
}

// register adds the flag to a command group's persistent flags; what says what
// the address is of.
func (a *addrFlag) register(pf *pflag.FlagSet, what string) {
	pf.StringVar(&a.value, a.flag, "", what+" (default $"+a.env+", else "+a.def+")")
}

// resolve picks the address, and returns with it the error to report should
// it not parse: a usage error when it came from the flag, a configuration
// error when it came from the environment. want says what is expected.
func (a *addrFlag) resolve(cmd *cobra.Command, want string) (string, error) {
	if cmd.Flags().Changed(a.flag) {
		return a.value, usageError{fmt.Errorf("--%s %q: want %s", a.flag, a.value, want)}
	}
	if v := strings.TrimSpace(os.Getenv(a.env)); v != "" {
		return v, configError{fmt.Errorf("%s=%q: want %s", a.env, v, want)}
	}
	return a.def, fmt.Errorf("built-in default address %q: want %s", a.def, want)
}

// writeProtoJSON prints a protobuf message as one line of JSON with the
// proto field names. protojson varies its whitespace on purpose; compacting
// makes the line stable.
func writeProtoJSON(w io.Writer, msg proto.Message) error {
	b, err := compactProtoJSON(msg)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// compactProtoJSON marshals a protobuf message as JSON with the proto field
// names, without insignificant whitespace.
func compactProtoJSON(msg proto.Message) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
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

// checkLimit rejects a negative --limit.
func checkLimit(limit int) error {
	if limit < 0 {
		return usageError{fmt.Errorf("invalid value %d for --limit: want 0 (no limit) or more", limit)}
	}
	return nil
}

// idOrFlag reads a command's one way of naming a thing: an argument (what
// says what it is, "a session id") or the named flag, not both. It returns
// the argument, or "" when the flag was given.
func idOrFlag(cmd *cobra.Command, args []string, what, flag string) (string, error) {
	switch given := cmd.Flags().Changed(flag) && cmd.Flags().Lookup(flag).Value.String() != ""; {
	case len(args) == 1 && given:
		return "", usageError{fmt.Errorf("give %s or --%s, not both", what, flag)}
	case len(args) == 1:
		return args[0], nil
	case !given:
		return "", usageError{fmt.Errorf("give %s or --%s", what, flag)}
	}
	return "", nil
}

// maxPageSize is the largest page GAIA's List RPCs serve.
const maxPageSize = 1000

// listPages follows next_page_token until the last page or until limit items
// (limit 0: no limit), asking each page for no more than it still needs, and
// returns the items with the token where it stopped: empty after the last
// page, set when the limit cut the listing short. page fetches one page.
func listPages[T any](ctx context.Context, limit int, page func(ctx context.Context, size int32, token string) ([]T, string, error)) ([]T, string, error) {
	var all []T
	token := ""
	for {
		size := int32(maxPageSize)
		if limit > 0 {
			size = int32(min(limit-len(all), maxPageSize))
		}
		items, next, err := page(ctx, size, token)
		if err != nil {
			return nil, "", err
		}
		all = append(all, items...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], next, nil
		}
		if next == "" {
			return all, "", nil
		}
		if next == token {
			return nil, "", errors.New("the server returned the same page token twice")
		}
		token = next
	}
}

// serviceFlags are the connection and output flags of a command group that
// calls one service at one address (the task queue, metrics, the dashboard);
// C is the group's client stubs.
type serviceFlags[C any] struct {
	rpcFlags
	addr  addrFlag
	stubs func(grpc.ClientConnInterface) C
}

// newServiceGroup builds a command group whose subcommands share the
// connection flags: addr (described by what) and --timeout (waitsFor) and
// --json. stubs makes the group's client stubs on a connection.
func newServiceGroup[C any](use, short string, addr addrFlag, what, waitsFor string, stubs func(grpc.ClientConnInterface) C) (*cobra.Command, *serviceFlags[C]) {
	f := &serviceFlags[C]{addr: addr, stubs: stubs}
	cmd := newCommandGroup(use, short)
	pf := cmd.PersistentFlags()
	f.addr.register(pf, what)
	f.register(pf, waitsFor)
	return cmd, f
}

// serviceClient is a connection to a service and its stubs. The CLI makes one
// call per run, so it does not retry: an unreachable server is reported at
// once as unavailable.
type serviceClient[C any] struct {
	conn *grpc.ClientConn
	api  C
}

func (c *serviceClient[C]) Close() error { return c.conn.Close() }

// connect builds a client from the address flag, falling back to the
// environment.
func (f *serviceFlags[C]) connect(cmd *cobra.Command) (*serviceClient[C], error) {
	addr, badAddr := f.addr.resolve(cmd, "host:port")
	if checkHostPort(f.addr.flag, addr) != nil {
		return nil, badAddr
	}
	dialOpts, err := cliDialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpcclient.Dial(addr, append(dialOpts, grpc.WithDisableRetry(), grpcclient.WithBearer(cliToken(cmd)))...)
	if err != nil {
		return nil, badAddr
	}
	return &serviceClient[C]{conn: conn, api: f.stubs(conn)}, nil
}

// call runs fn against the service; see callService.
func (f *serviceFlags[C]) call(cmd *cobra.Command, fn func(context.Context, *serviceClient[C]) error) error {
	return callService(cmd, &f.rpcFlags, 0, f.connect, fn)
}
