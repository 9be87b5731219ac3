// Command failoverbench measures how long the coordinator takes to accept a
// write again after its leader dies. It builds the coordinator, runs three
// real coordinator processes on loopback with the production Raft timings,
// and then, several times over, kills the leader with SIGKILL and times the
// kill to the first lock granted through the surviving nodes, before starting
// the killed node again on its data folder and waiting for it to catch up.
//
// It prints every run, then the minimum, median and maximum and the median as
// a multiple of RAFT_ELECTION_TIMEOUT. `make bench` runs it. Everything stays
// on 127.0.0.1; the run is bounded by -timeout, and the processes and their
// temporary folder are removed however it ends (short of failoverbench itself
// being killed with SIGKILL).
//
// It is one file of some 540 lines on purpose: a self-contained program whose
// steps (build, start, kill, time, restart, report) read top to bottom, with
// nothing in it that another package uses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// The seeds' Raft timings, passed to every node.
const (
	raftHeartbeatTimeout = 150 * time.Millisecond
	raftElectionTimeout  = 300 * time.Millisecond
)

const (
	// target is the failover time the coordinator is meant to stay under.
	target = time.Second
	// attemptPause is the gap between attempts on one node: tight, yet
	// leaving the CPU to the nodes that are electing a leader.
	attemptPause = 2 * time.Millisecond
	// settleTimeout bounds each wait for the cluster to form, elect or
	// catch up.
	settleTimeout = 30 * time.Second
)

// reconnectBackoff retries a refused connection every 10 ms, in step with
// the bench's polling (20 ms), instead of after gRPC's default 1 s.
var reconnectBackoff = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1, MaxDelay: 10 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// attemptTimeout cuts a write attempt, so that one stuck on a node still
// forwarding to the dead leader does not hide that the new leader already
// takes writes.
var attemptTimeout time.Duration

func main() {
	runs := flag.Int("runs", 5, "how many times to kill the leader")
	timeout := flag.Duration("timeout", 3*time.Minute, "bound on the whole run, build included")
	flag.DurationVar(&attemptTimeout, "attempt-timeout", 50*time.Millisecond,
		"cut a write attempt after this long and send the next; it bounds how late the first write can be seen")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	err := run(ctx, *runs)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "failoverbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, runs int) (err error) {
	if runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	dir, err := os.MkdirTemp("", "failoverbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, "coordinator")
	if err := build(ctx, bin); err != nil {
		return err
	}
	c, err := newCluster(dir, bin)
	if err != nil {
		return err
	}
	defer c.close()
	defer func() {
		if err != nil {
			c.printLogTails()
		}
	}()
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			return err
		}
	}
	if _, err := c.waitSettled(ctx, nil); err != nil {
		return fmt.Errorf("cluster did not form: %w", err)
	}
	fmt.Printf("failoverbench: 3 coordinator processes on 127.0.0.1, RAFT_HEARTBEAT_TIMEOUT=%s RAFT_ELECTION_TIMEOUT=%s, %d leader kills, write attempts cut after %s\n",
		raftHeartbeatTimeout, raftElectionTimeout, runs, attemptTimeout)

	session, stopBeating, err := c.registerSession(ctx)
	if err != nil {
		return err
	}
	defer stopBeating()

	var writes []time.Duration
	for i := 1; i <= runs; i++ {
		r, err := c.failover(ctx, session, i)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		writes = append(writes, r.firstWrite)
		fmt.Printf("run %d: killed leader %s (term %d); %s elected after %s; first write after %s (via %s); %s caught up %s after restart; term now %d (%d elections)\n",
			i, r.killed, r.term, r.newLeader, ms(r.elected), ms(r.firstWrite), r.writeVia, r.killed, ms(r.rejoined), r.termAfter, int64(r.termAfter)-int64(r.term))
	}
	report(writes)
	return nil
}

// build compiles the coordinator from the module this program belongs to.
func build(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("run failoverbench inside the gaia module")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/coordinator")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the coordinator: %w", err)
	}
	return nil
}

func report(writes []time.Duration) {
	sorted := slices.Clone(writes)
	slices.Sort(sorted)
	lo, mid, hi := sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1]
	if len(sorted)%2 == 0 {
		mid = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	fmt.Printf("kill → first write: min %s, median %s, max %s over %d runs; median = %.2f× RAFT_ELECTION_TIMEOUT (%s)\n",
		ms(lo), ms(mid), ms(hi), len(sorted), float64(mid)/float64(raftElectionTimeout), raftElectionTimeout)
	verdict := "met"
	if hi >= target {
		verdict = "NOT met"
	}
	fmt.Printf("target: every failover under %s: %s (max %s)\n", target, verdict, ms(hi))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

// node is one coordinator process, started again on the same ports and data
// folder after each kill.
type node struct {
	id       string
	grpcAddr string
	env      []string
	logPath  string
	conn     *grpc.ClientConn

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

type cluster struct {
	bin   string
	nodes []*node
	// admin is the credential the bench reads cluster status with, and the
	// nodes join with.
	admin string
}

func newCluster(dir, bin string) (*cluster, error) {
	c := &cluster{bin: bin}
	keys, _, err := auth.EnsureLocalKeys(filepath.Join(dir, "auth"))
	if err != nil {
		return nil, err
	}
	if c.admin, _, err = keys.Signer.Sign(auth.Spec{Role: auth.RoleAdmin, Name: "failoverbench", TTL: 24 * time.Hour}); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(keys.Dir, "admin.token")
	if err := auth.WriteFileAtomic(tokenFile, []byte(c.admin), 0o600); err != nil {
		return nil, err
	}
	// The Raft port speaks only mutual TLS; the members share one
	// development certificate.
	pki, err := tlsconfig.WriteDev(filepath.Join(dir, "certs"), nil)
	if err != nil {
		return nil, err
	}
	member := pki.ClusterMember()
	for i := 1; i <= 3; i++ {
		grpcAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		raftAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		n := &node{id: fmt.Sprintf("node-%d", i), grpcAddr: grpcAddr, logPath: filepath.Join(dir, fmt.Sprintf("node-%d.log", i))}
		n.env = append(os.Environ(),
			"COORDINATOR_LISTEN_ADDR="+grpcAddr,
			"COORDINATOR_ADVERTISE_ADDR="+grpcAddr,
			"CLUSTER_ENABLED=true",
			"CLUSTER_NODE_ID="+n.id,
			"CLUSTER_BIND_ADDR="+raftAddr,
			"CLUSTER_ADVERTISE_ADDR="+raftAddr,
			"CLUSTER_DATA_DIR="+filepath.Join(dir, n.id),
			"RAFT_HEARTBEAT_TIMEOUT="+raftHeartbeatTimeout.String(),
			"RAFT_ELECTION_TIMEOUT="+raftElectionTimeout.String(),
			"LOG_LEVEL=warn",
			"CLUSTER_TLS_CERT_FILE="+member.CertFile,
			"CLUSTER_TLS_KEY_FILE="+member.KeyFile,
			"CLUSTER_TLS_CA_FILE="+member.CAFile,
			"AUTH_PUBLIC_KEYS_FILE="+keys.PublicKeysFile,
			"AUTH_SIGNING_KEY_FILE="+keys.SigningKeyFile,
			"AUTH_TOKEN_FILE="+tokenFile,
		)
		n.env = append(n.env, fmt.Sprintf("CLUSTER_BOOTSTRAP=%t", i == 1))
		c.nodes = append(c.nodes, n)
	}
	// As the README: every node knows all three, and node 1 forms the
	// cluster once the others answer that they have none.
	var all []string
	for _, n := range c.nodes {
		all = append(all, n.grpcAddr)
	}
	for _, n := range c.nodes {
		n.env = append(n.env, "CLUSTER_DISCOVERY_NODES="+strings.Join(all, ","))
	}
	return c, nil
}

// freeAddr reserves a loopback port by listening on it and letting it go.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs a node's process and opens a fresh connection to it: one kept
// from before a kill would wait out gRPC's reconnect backoff and make the
// node look slow to come back.
//
// The fresh connection is first used while the process is still starting, so
// its first connect is refused, and gRPC's default backoff then waits exactly
// 1 s (its first delay has no jitter) before the next: that, not the node, made
// every restarted node look caught up after 1.01–1.03 s. reconnectBackoff
// keeps the retries as fine as the polling.
func (c *cluster) start(n *node) error {
	// No retries: the bench measures when a node answers, not when a retry does.
	conn, err := grpcclient.Dial(n.grpcAddr, grpc.WithDisableRetry(), grpcclient.WithBearer(c.admin), reconnectBackoff)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		_ = conn.Close()
		return err
	}
	cmd := exec.Command(c.bin)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		_ = conn.Close()
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	n.cmd, n.done, n.conn = cmd, make(chan struct{}), conn
	done := n.done
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(done)
	}()
	return nil
}

// kill ends a node's process with SIGKILL and waits for it to be gone.
func (c *cluster) kill(n *node) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	_ = n.conn.Close()
	n.cmd = nil
}

// close kills every process: a graceful stop could wait on a cluster in a
// bad state, and the data is thrown away anyway.
func (c *cluster) close() {
	for _, n := range c.nodes {
		c.kill(n)
	}
}

func (c *cluster) printLogTails() {
	for _, n := range c.nodes {
		b, err := os.ReadFile(n.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		lines = lines[max(0, len(lines)-15):]
		fmt.Fprintf(os.Stderr, "--- last lines of %s's log:\n%s\n", n.id, strings.Join(lines, "\n"))
	}
}

func (c *cluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func clusterStatus(ctx context.Context, n *node) (*coordinatorv1.GetClusterStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return coordinatorv1.NewClusterServiceClient(n.conn).GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{})
}

// waitSettled waits until the leader counts three voters and every running
// node (or only those given) knows that leader and has applied everything
// the leader had committed. It returns the leader.
func (c *cluster) waitSettled(ctx context.Context, only []*node) (*node, error) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	check := only
	if check == nil {
		check = c.nodes
	}
	var last error
	for {
		leader, err := c.settled(ctx, check)
		if err == nil {
			return leader, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *cluster) settled(ctx context.Context, check []*node) (*node, error) {
	var leader *node
	for _, n := range c.nodes {
		if n.cmd == nil {
			continue
		}
		st, err := clusterStatus(ctx, n)
		if err != nil {
			continue
		}
		if leader = c.byID(st.GetLeader().GetNodeId()); leader != nil {
			break
		}
	}
	if leader == nil {
		return nil, errors.New("no leader known")
	}
	lst, err := clusterStatus(ctx, leader)
	if err != nil {
		return nil, err
	}
	voters := 0
	for _, s := range lst.GetNodes() {
		if s.GetSuffrage() == coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER {
			voters++
		}
	}
	if voters != 3 {
		return nil, fmt.Errorf("%d voters", voters)
	}
	for _, n := range check {
		st, err := clusterStatus(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.id, err)
		}
		if st.GetLeader().GetNodeId() != leader.id || st.GetAppliedIndex() < lst.GetCommitIndex() {
			return nil, fmt.Errorf("%s sees leader %q, applied %d of %d", n.id, st.GetLeader().GetNodeId(), st.GetAppliedIndex(), lst.GetCommitIndex())
		}
	}
	return leader, nil
}

type session struct{ id, token string }

// registerSession registers the session that takes the locks and keeps it
// beating, so that it stays live however long the runs take.
func (c *cluster) registerSession(ctx context.Context) (session, func(), error) {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.grpcAddr
	}
	cl, err := client.New(client.Options{Addrs: addrs})
	if err != nil {
		return session{}, nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	resp, err := cl.Sessions().RegisterSession(rctx, &coordinatorv1.RegisterSessionRequest{
		Name: "failoverbench", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_OTHER,
	})
	if err != nil {
		_ = cl.Close()
		return session{}, nil, fmt.Errorf("register a session: %w", err)
	}
	s := session{resp.GetSession().GetSessionId(), resp.GetSessionToken()}
	h := cl.StartHeartbeat(context.Background(), s.id, s.token, time.Second, nil)
	return s, func() { h.Stop(); _ = cl.Close() }, nil
}

type runResult struct {
	killed, newLeader, writeVia string
	// term is the leader's before the kill, termAfter once the killed node
	// has caught up: one election moves it by one (more is an election
	// lost, or one more than the kill called for).
	term, termAfter     uint64
	elected, firstWrite time.Duration
	rejoined            time.Duration
}

// failover kills the leader, times the election and the first write, then
// restarts the killed node and waits for it to catch up.
func (c *cluster) failover(ctx context.Context, s session, run int) (runResult, error) {
	leader, err := c.waitSettled(ctx, nil)
	if err != nil {
		return runResult{}, fmt.Errorf("cluster not settled before the kill: %w", err)
	}
	lst, err := clusterStatus(ctx, leader)
	if err != nil {
		return runResult{}, err
	}
	var survivors []*node
	for _, n := range c.nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	r := runResult{killed: leader.id, term: lst.GetTerm()}
	key := fmt.Sprintf("failoverbench/run-%d", run)

	wctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	killedAt := time.Now()
	c.kill(leader)
	elected := make(chan sighting, 1)
	go func() { elected <- c.watchElection(wctx, survivors, leader.id) }()
	wrote := make(chan *node, len(survivors))
	var wg sync.WaitGroup
	for _, n := range survivors {
		wg.Go(func() {
			if writeUntilGranted(wctx, n, key, s) {
				wrote <- n
			}
		})
	}
	select {
	case n := <-wrote:
		r.firstWrite, r.writeVia = time.Since(killedAt), n.id
	case <-wctx.Done():
		cancel()
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("waiting for the first write after killing %s: %w", leader.id, err)
		}
		return r, fmt.Errorf("no write granted within %s of killing %s", settleTimeout, leader.id)
	}
	seen := <-elected
	r.newLeader, r.elected = seen.id, seen.at.Sub(killedAt)
	cancel()
	wg.Wait()

	restartedAt := time.Now()
	if err := c.start(leader); err != nil {
		return r, err
	}
	now, err := c.waitSettled(ctx, []*node{leader})
	if err != nil {
		return r, fmt.Errorf("%s did not catch up after restart: %w", leader.id, err)
	}
	r.rejoined = time.Since(restartedAt)
	if st, err := clusterStatus(ctx, now); err == nil {
		r.termAfter = st.GetTerm()
	}
	return r, nil
}

// sighting is the first time a survivor named a new leader.
type sighting struct {
	id string
	at time.Time
}

// watchElection polls the survivors until one reports a leader other than
// the dead one.
func (c *cluster) watchElection(ctx context.Context, survivors []*node, dead string) sighting {
	for {
		for _, n := range survivors {
			st, err := clusterStatus(ctx, n)
			if id := st.GetLeader().GetNodeId(); err == nil && id != "" && id != dead {
				return sighting{id, time.Now()}
			}
		}
		select {
		case <-ctx.Done():
			return sighting{"unknown", time.Now()}
		case <-time.After(attemptPause):
		}
	}
}

// writeUntilGranted acquires key through n, attempt after attempt, until it
// is granted (true) or ctx ends (false). Errors that no failover explains end
// the attempts too.
func writeUntilGranted(ctx context.Context, n *node, key string, s session) bool {
	locks := coordinatorv1.NewLockServiceClient(n.conn)
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		_, err := locks.AcquireLock(actx, &coordinatorv1.AcquireLockRequest{
			Key: key, SessionId: s.id, SessionToken: s.token, Ttl: durationpb.New(time.Minute),
		})
		cancel()
		switch status.Code(err) {
		case codes.OK:
			return true
		case codes.Unavailable, codes.DeadlineExceeded:
		default:
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "failoverbench: acquire via %s: %v\n", n.id, err)
			}
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(attemptPause):
		}
	}
	return false
}
