// Package proctest runs three real coordinator processes on loopback, started
// as the README's "coordinator cluster" section starts them (every node
// names all three and presents the admin credential, node-1 may form the
// cluster once the others answer that they have none, the Raft port on
// mutual TLS), for tests that kill, freeze and restart them.
//
// It is for tests only: it builds the coordinator binary with the go command
// and signals processes. It owns the processes and their temporary folders
// and touches nothing else.
package proctest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/testnet"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// Build compiles the coordinator into the test's temporary folder and
// returns its path (the go command's cache makes every build after the
// first a link).
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "coordinator")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gaia-platform/gaia/services/coordinator").CombinedOutput()
	if err != nil {
		t.Fatalf("go build services/coordinator: %v\n%s", err, out)
	}
	return bin
}

// Node is one coordinator process, started again on the same ports and data
// folder after a kill.
type Node struct {
	ID       string
	GRPCAddr string
	// DataDir is the node's CLUSTER_DATA_DIR.
	DataDir string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	frozen bool
	conn   *grpc.ClientConn
}

// Cluster is three coordinator processes.
type Cluster struct {
	t     testing.TB
	bin   string
	Nodes []*Node
	// proxies[from][to] carries from's Raft connections to to (Partitions).
	proxies map[int]map[int]*raftProxy
	// AdminToken is the admin credential the nodes join with; tests read
	// cluster status with it.
	AdminToken string
}

// Options shape a cluster.
type Options struct {
	// Env is added to each node's environment (SESSION_LEASE_TIMEOUT=3s …).
	Env map[string]string
	// Partitions puts a TCP proxy on every Raft path between two nodes, so
	// that Isolate can cut a node's Raft traffic both ways. Each node then
	// advertises a Raft name (raft-N.proctest) that its peers resolve,
	// through their own GAIA_TEST_HOSTS file, to the proxy from them to it.
	// The gRPC ports (clients, forwarding) are not proxied.
	Partitions bool
	// DataDirTmpfsSize, when set (such as "32m"), puts each node's data
	// directory on a tmpfs of its own of that size, so that a test can fill
	// one node's disk. Mounting needs root (or CAP_SYS_ADMIN); where it is
	// not permitted the test is skipped. The mounts are removed when the
	// test ends, after the processes.
	DataDirTmpfsSize string
}

// Start builds the coordinator, starts three processes and waits until they
// form one cluster. The processes are killed when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Build(t)}
	dir := t.TempDir()
	keys, _, err := auth.EnsureLocalKeys(filepath.Join(dir, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken, _, err = keys.Signer.Sign(auth.Spec{Role: auth.RoleAdmin, Name: "proctest", TTL: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(keys.Dir, "admin.token")
	if err := auth.WriteFileAtomic(tokenFile, []byte(c.AdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	pki, err := tlsconfig.WriteDev(filepath.Join(dir, "certs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	member := pki.ClusterMember()
	// As the README runs them: every node names all three and presents the
	// admin credential; node 1 may form the cluster.
	var grpcAddrs, raftAddrs []string
	for range 3 {
		grpcAddrs = append(grpcAddrs, freeAddr(t))
	}
	peers := strings.Join(grpcAddrs, ",")
	for i := 1; i <= 3; i++ {
		grpcAddr, raftAddr := grpcAddrs[i-1], freeAddr(t)
		n := &Node{ID: fmt.Sprintf("node-%d", i), GRPCAddr: grpcAddr, DataDir: filepath.Join(dir, fmt.Sprintf("node-%d", i)),
			logPath: filepath.Join(dir, fmt.Sprintf("node-%d.log", i))}
		if opts.DataDirTmpfsSize != "" {
			mountTmpfs(t, n.DataDir, opts.DataDirTmpfsSize)
		}
		n.env = append(os.Environ(),
			"COORDINATOR_LISTEN_ADDR="+grpcAddr,
			"CLUSTER_ENABLED=true",
			"CLUSTER_NODE_ID="+n.ID,
			"CLUSTER_BIND_ADDR="+raftAddr,
			"CLUSTER_DATA_DIR="+n.DataDir,
			"CLUSTER_TLS_CERT_FILE="+member.CertFile,
			"CLUSTER_TLS_KEY_FILE="+member.KeyFile,
			"CLUSTER_TLS_CA_FILE="+member.CAFile,
			"AUTH_PUBLIC_KEYS_FILE="+keys.PublicKeysFile,
			"AUTH_SIGNING_KEY_FILE="+keys.SigningKeyFile,
			"AUTH_TOKEN_FILE="+tokenFile,
			"CLUSTER_DISCOVERY_NODES="+peers,
		)
		if i == 1 {
			n.env = append(n.env, "CLUSTER_BOOTSTRAP=true")
		}
		if opts.Partitions {
			_, port, _ := net.SplitHostPort(raftAddr)
			n.env = append(n.env, "CLUSTER_ADVERTISE_ADDR="+raftName(i)+":"+port,
				"GAIA_TEST_HOSTS="+filepath.Join(dir, n.ID+".hosts"))
		}
		for k, v := range opts.Env {
			n.env = append(n.env, k+"="+v)
		}
		c.Nodes = append(c.Nodes, n)
		raftAddrs = append(raftAddrs, raftAddr)
	}
	if opts.Partitions {
		c.startProxies(dir, raftAddrs)
	}
	t.Cleanup(func() {
		for _, to := range c.proxies {
			for _, p := range to {
				p.close()
			}
		}
		for _, n := range c.Nodes {
			c.Kill(n)
			if t.Failed() {
				t.Logf("%s's log, last lines:\n%s", n.ID, c.LogTail(n, 25))
			}
		}
	})
	for _, n := range c.Nodes {
		c.Restart(n)
	}
	c.WaitConverged(60 * time.Second)
	return c
}

// mountTmpfs mounts a tmpfs of the given size on dir (created) and
// unmounts it when the test ends: cleanups run last-registered first, so
// after the processes, which Start's later cleanup kills, have let go of it.
// Where mounting is not permitted it skips, except under CI=true (CI runs as
// root here, and the disk-full test must run there).
func mountTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0750"); err != nil {
		if (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) && os.Getenv("CI") != "true" {
			t.Skipf("this test puts a node's data directory on a tmpfs, and mounting one is not permitted here (%v): run it as root or with CAP_SYS_ADMIN", err)
		}
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds a file there: detach it now, the
			// kernel frees it when the last user lets go.
			if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount the tmpfs on %s: %v", dir, err)
			}
		}
	})
}

// Log is everything a node has written to its log so far.
func (c *Cluster) Log(n *Node) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return testnet.FreeAddr(t)
}

// Restart starts a node's process (again, on its data folder).
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		c.t.Fatalf("%s is already running", n.ID)
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A test killed before its cleanup leaves no coordinator behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		c.t.Fatalf("start %s: %v", n.ID, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(exited) }()
	n.cmd, n.exited, n.frozen = cmd, exited, false
}

// Kill ends a node with SIGKILL (frozen or not) and waits for it to be gone.
func (c *Cluster) Kill(n *Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.cmd, n.frozen = nil, false
}

// KillAll ends every node with SIGKILL at once, as a power cut does, and
// waits for them all to be gone.
func (c *Cluster) KillAll() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(func() { c.Kill(n) })
	}
	wg.Wait()
}

// Freeze stops a node with SIGSTOP: its sockets stay open, nothing answers.
func (c *Cluster) Freeze(n *Node) { c.signal(n, syscall.SIGSTOP, true) }

// Thaw resumes a frozen node with SIGCONT.
func (c *Cluster) Thaw(n *Node) { c.signal(n, syscall.SIGCONT, false) }

func (c *Cluster) signal(n *Node, sig syscall.Signal, frozen bool) {
	c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		c.t.Fatalf("%s: %v to a node that is not running", n.ID, sig)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("%s: %v: %v", n.ID, sig, err)
	}
	n.frozen = frozen
}

// Up reports whether the node runs and is not frozen.
func (n *Node) Up() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !n.frozen
}

// Conn is a connection to this node alone, kept for the whole test (gRPC
// reconnects it after a restart).
func (c *Cluster) Conn(n *Node) *grpc.ClientConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		// A node restarted after a kill is reached again within a second,
		// not after gRPC's default backoff of up to two minutes.
		conn, err := grpcclient.Dial(n.GRPCAddr, grpc.WithDisableRetry(), grpcclient.WithBearer(c.AdminToken),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           grpcbackoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}))
		if err != nil {
			c.t.Fatal(err)
		}
		n.conn = conn
		c.t.Cleanup(func() { _ = conn.Close() })
	}
	return n.conn
}

// Client is a Go client of the given nodes (all when none given).
func (c *Cluster) Client(nodes ...*Node) *client.Client {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.Nodes
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.GRPCAddr)
	}
	cl, err := client.New(client.Options{Addrs: addrs, Token: c.AdminToken})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Status is the node's own GetClusterStatus, nil if it does not answer
// within timeout.
func (c *Cluster) Status(n *Node, timeout time.Duration) *coordinatorv1.GetClusterStatusResponse {
	if !n.Up() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := coordinatorv1.NewClusterServiceClient(c.Conn(n)).GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{})
	if err != nil {
		return nil
	}
	return st
}

// Leader is the node that answers, itself, that it leads; nil if none does.
func (c *Cluster) Leader() *Node {
	for _, n := range c.Nodes {
		if st := c.Status(n, 300*time.Millisecond); st != nil && st.GetLeader().GetNodeId() == n.ID && st.GetAnsweredBy() == n.ID {
			return n
		}
	}
	return nil
}

// Followers are the nodes other than n.
func (c *Cluster) Followers(n *Node) []*Node {
	var out []*Node
	for _, m := range c.Nodes {
		if m != n {
			out = append(out, m)
		}
	}
	return out
}

// converged says whether a leader counts three voters and every running,
// unfrozen node follows it and has applied what it had committed.
func (c *Cluster) converged() (*Node, error) {
	lead := c.Leader()
	if lead == nil {
		return nil, errors.New("no leader")
	}
	lst := c.Status(lead, time.Second)
	if lst == nil {
		return nil, errors.New("leader does not answer")
	}
	voters := 0
	for _, s := range lst.GetNodes() {
		if s.GetSuffrage() == coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER {
			voters++
		}
	}
	if voters != len(c.Nodes) {
		return nil, fmt.Errorf("%d voters", voters)
	}
	for _, n := range c.Nodes {
		if !n.Up() {
			continue
		}
		st := c.Status(n, time.Second)
		if st == nil {
			return nil, fmt.Errorf("%s does not answer", n.ID)
		}
		if st.GetLeader().GetNodeId() != lead.ID || st.GetAppliedIndex() < lst.GetCommitIndex() {
			return nil, fmt.Errorf("%s sees leader %q, applied %d of %d", n.ID, st.GetLeader().GetNodeId(), st.GetAppliedIndex(), lst.GetCommitIndex())
		}
	}
	return lead, nil
}

// WaitConverged waits until one leader counts three voters and every running
// node follows it and has caught up; it returns the leader.
func (c *Cluster) WaitConverged(timeout time.Duration) *Node {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lead, err := c.converged()
		if err == nil {
			return lead
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not converged within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LogTail is the last lines a node wrote.
func (c *Cluster) LogTail(n *Node, lines int) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
