// Package coordtest runs real coordinator clusters inside a test process:
// every node a full coordinator (Raft over loopback TCP, gRPC server, state
// machine, leader loops) with its own data folder and fixed ports, so that
// nodes can be killed, restarted from disk and cut off from each other. Other
// services' tests use it for an in-process coordinator.
package coordtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/testnet"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
	"github.com/gaia-platform/gaia/services/coordinator/service"
)

// Options tune the cluster. Zero values take the defaults noted.
type Options struct {
	LeaseTimeout      time.Duration // default 5s
	HeartbeatInterval time.Duration // default 500ms
	FailoverGrace     time.Duration // default HeartbeatInterval
	HeartbeatTimeout  time.Duration // Raft; default 150ms
	ElectionTimeout   time.Duration // Raft; default 300ms
	SnapshotThreshold int           // default 8192
	LogEncoding       string        // RAFT_LOG_ENCODING; default protobuf
	JoinSecret        string
	// GRPCTLS serves the nodes' gRPC ports over TLS too (the Raft port is
	// always mutual TLS, with the cluster's own CA in PKI).
	GRPCTLS bool
	// MaxLocksPerSession and MaxLiveSessions cap sessions (defaults: the
	// service's).
	MaxLocksPerSession int
	MaxLiveSessions    int
	// GRPCLimits bound each node's gRPC connections and streams (defaults:
	// the service's).
	GRPCLimits grpcserver.Limits
	// MaxReplyBytes is each node's reply byte budget (GRPC_MAX_REPLY_BYTES;
	// default the service's).
	MaxReplyBytes int
	// Keys sign and verify the cluster's credentials; nil makes new ones.
	// Every node verifies with them and issues with them; nodes join with
	// an admin credential, and Client calls as admin.
	Keys *authtest.Keys
	// Quiet logs only warnings and errors.
	Quiet bool
}

func (o *Options) defaults() {
	if o.LeaseTimeout == 0 {
		o.LeaseTimeout = 5 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 500 * time.Millisecond
	}
	if o.FailoverGrace == 0 {
		o.FailoverGrace = o.HeartbeatInterval
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = 150 * time.Millisecond
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = 300 * time.Millisecond
	}
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 8192
	}
}

// Cluster is a set of coordinator nodes.
type Cluster struct {
	t     testing.TB
	opts  Options
	Nodes []*Node
	// PKI holds the cluster's certificates: every node's Raft port trusts
	// PKI.ClusterMember's CA only; with GRPCTLS the gRPC ports serve
	// PKI.Service("coordinator").
	PKI tlsconfig.DevLayout
	// Keys are the cluster's signing keys (Options.Keys or new ones).
	Keys *authtest.Keys
	// AdminToken is an admin credential of the cluster.
	AdminToken string
}

// Node is one coordinator of a cluster.
type Node struct {
	ID        string
	GRPCAddr  string
	RaftAddr  string
	cfg       service.Config
	svc       *service.Service
	transport *partitionTransport
	cancel    context.CancelFunc
	done      chan error
	running   bool
	mu        sync.Mutex
}

// Start runs an n-node cluster started as the README and the StatefulSet
// start one: every node knows every node's address, node 1 may bootstrap and
// forms the cluster once the others answer that they have none, and they
// join it. It returns once every node is a voter and a leader is elected;
// Cleanup stops every node.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	opts.defaults()
	c := &Cluster{t: t, opts: opts, Keys: opts.Keys}
	if c.Keys == nil {
		c.Keys = authtest.New(t)
	}
	c.AdminToken = c.Keys.Admin(t)
	dir := t.TempDir()
	pki, err := tlsconfig.WriteDev(filepath.Join(dir, "certs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.PKI = pki
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("node-%d", i)
		node := &Node{ID: id, GRPCAddr: freeAddr(t), RaftAddr: freeAddr(t)}
		node.cfg = c.config(node, filepath.Join(dir, id), i == 1)
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		node.cfg.Cluster.DiscoveryNodes = c.Addrs()
	}
	for _, node := range c.Nodes {
		c.startNode(node)
	}
	t.Cleanup(c.StopAll)
	c.WaitForVoters(n)
	c.WaitConverged()
	return c
}

func (c *Cluster) config(node *Node, dataDir string, bootstrap bool) service.Config {
	var cfg service.Config
	cfg.ListenAddr = node.GRPCAddr
	cfg.AdvertiseAddr = node.GRPCAddr
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.Cluster = service.ClusterConfig{
		Enabled:       true,
		NodeID:        node.ID,
		BindAddr:      node.RaftAddr,
		AdvertiseAddr: node.RaftAddr,
		DataDir:       dataDir,
		Bootstrap:     bootstrap,
		JoinSecret:    c.opts.JoinSecret,
		TLS:           c.PKI.ClusterMember(),
	}
	if c.opts.GRPCTLS {
		cfg.TLS = c.PKI.Service("coordinator")
	}
	cfg.Auth = c.Keys.Config(c.t, c.AdminToken)
	cfg.GRPCLimits = c.opts.GRPCLimits
	cfg.MaxReplyBytes = c.opts.MaxReplyBytes
	cfg.Raft = service.RaftConfig{
		HeartbeatTimeout:  c.opts.HeartbeatTimeout,
		ElectionTimeout:   c.opts.ElectionTimeout,
		SnapshotInterval:  time.Second,
		SnapshotRetain:    2,
		SnapshotThreshold: c.opts.SnapshotThreshold,
	}
	if c.opts.LogEncoding != "" {
		enc, err := fsm.ParseEncoding(c.opts.LogEncoding)
		if err != nil {
			c.t.Fatal(err)
		}
		cfg.Raft.LogEncoding = enc
	}
	cfg.Session = service.SessionConfig{
		LeaseTimeout:      c.opts.LeaseTimeout,
		HeartbeatInterval: c.opts.HeartbeatInterval,
		FailoverGrace:     c.opts.FailoverGrace,
		MaxLocks:          c.opts.MaxLocksPerSession,
		MaxPerJoinSecret:  c.opts.MaxLiveSessions,
		EventRetention:    state.DefaultEventRetention,
		SnapshotEvents:    state.DefaultSnapshotEvents,
	}
	return cfg
}

func (c *Cluster) logger(id string) *zap.Logger {
	level := zap.InfoLevel
	if c.opts.Quiet {
		level = zap.WarnLevel
	}
	return zaptest.NewLogger(c.t, zaptest.Level(level)).Named(id)
}

func (c *Cluster) startNode(node *Node) {
	c.t.Helper()
	node.mu.Lock()
	defer node.mu.Unlock()
	svc, err := service.New(context.Background(), node.cfg, c.logger(node.ID), service.Options{
		WrapTransport: func(t raft.Transport) raft.Transport {
			node.transport = newPartitionTransport(t)
			return node.transport
		},
	})
	if err != nil {
		c.t.Fatalf("start %s: %v", node.ID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	node.svc, node.cancel, node.done, node.running = svc, cancel, make(chan error, 1), true
	go func() { node.done <- svc.Run(ctx) }()
}

// Kill stops a node at once, as kill -9 would.
func (c *Cluster) Kill(node *Node) {
	c.t.Helper()
	node.mu.Lock()
	defer node.mu.Unlock()
	if !node.running {
		return
	}
	node.svc.Kill()
	node.cancel()
	<-node.done
	node.running = false
}

// Stop stops a node gracefully (a leader hands over first).
func (c *Cluster) Stop(node *Node) {
	c.t.Helper()
	node.mu.Lock()
	defer node.mu.Unlock()
	if !node.running {
		return
	}
	node.cancel()
	if err := <-node.done; err != nil {
		c.t.Errorf("stop %s: %v", node.ID, err)
	}
	node.running = false
}

// Wipe deletes a stopped node's data folder, as a lost disk or volume
// would: restarted, it has no Raft state.
func (c *Cluster) Wipe(node *Node) {
	c.t.Helper()
	if node.Running() {
		c.t.Fatalf("wipe %s: the node runs", node.ID)
	}
	if err := os.RemoveAll(node.cfg.Cluster.DataDir); err != nil {
		c.t.Fatalf("wipe %s: %v", node.ID, err)
	}
}

// Restart starts a stopped node again on its ports and data folder.
func (c *Cluster) Restart(node *Node) {
	c.t.Helper()
	c.startNode(node)
}

// StopAll stops every running node.
func (c *Cluster) StopAll() {
	for _, n := range c.Nodes {
		c.Stop(n)
	}
}

// Running reports whether a node runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// Raft is the node's Raft instance (nil when stopped).
func (n *Node) Raft() *raft.Raft {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	return n.svc.Raft()
}

// Isolate cuts a node off from every other node, both ways.
func (c *Cluster) Isolate(node *Node) {
	node.transport.Isolate()
	for _, other := range c.Nodes {
		if other != node && other.transport != nil {
			other.transport.Block(raft.ServerAddress(node.RaftAddr))
		}
	}
}

// Heal lets every node reach every other again.
func (c *Cluster) Heal() {
	for _, n := range c.Nodes {
		if n.transport != nil {
			n.transport.Heal()
		}
	}
}

// Leader waits up to 10 s for a running node to lead and returns it.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	var found *Node
	c.eventually(10*time.Second, "no leader elected", func() bool {
		for _, n := range c.Nodes {
			if r := n.Raft(); r != nil && r.State() == raft.Leader {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

// Followers are the running nodes that do not lead.
func (c *Cluster) Followers() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if r := n.Raft(); r != nil && r.State() != raft.Leader {
			out = append(out, n)
		}
	}
	return out
}

// WaitForVoters waits until the leader's configuration has n voters.
func (c *Cluster) WaitForVoters(n int) {
	c.t.Helper()
	c.eventually(20*time.Second, fmt.Sprintf("cluster never reached %d voters", n), func() bool {
		for _, node := range c.Nodes {
			r := node.Raft()
			if r == nil || r.State() != raft.Leader {
				continue
			}
			f := r.GetConfiguration()
			if f.Error() != nil {
				return false
			}
			voters := 0
			for _, s := range f.Configuration().Servers {
				if s.Suffrage == raft.Voter {
					voters++
				}
			}
			return voters == n
		}
		return false
	})
}

// WaitConverged waits until every running node has applied the leader's
// last index.
func (c *Cluster) WaitConverged() {
	c.t.Helper()
	leader := c.Leader()
	want := leader.Raft().LastIndex()
	c.eventually(10*time.Second, "nodes did not converge", func() bool {
		for _, n := range c.Nodes {
			if r := n.Raft(); r != nil && r.AppliedIndex() < want {
				return false
			}
		}
		return true
	})
}

// Addrs are the gRPC addresses of every node.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.GRPCAddr
	}
	return out
}

// Client returns a client over the given nodes (all when none given),
// closed in Cleanup.
func (c *Cluster) Client(nodes ...*Node) *client.Client {
	c.t.Helper()
	addrs := c.Addrs()
	if len(nodes) > 0 {
		addrs = addrs[:0:0]
		for _, n := range nodes {
			addrs = append(addrs, n.GRPCAddr)
		}
	}
	return c.ClientAs(c.AdminToken, nodes...)
}

// ClientAs is Client presenting token ("" presents none, as an agent
// session's client does).
func (c *Cluster) ClientAs(token string, nodes ...*Node) *client.Client {
	c.t.Helper()
	addrs := c.Addrs()
	if len(nodes) > 0 {
		addrs = addrs[:0:0]
		for _, n := range nodes {
			addrs = append(addrs, n.GRPCAddr)
		}
	}
	opts := client.Options{Addrs: addrs, Token: token}
	if c.opts.GRPCTLS {
		src, err := tlsconfig.Open(tlsconfig.ClientFiles(c.PKI.CAFile()), nil)
		if err != nil {
			c.t.Fatal(err)
		}
		opts.DialOptions = []grpc.DialOption{grpcclient.WithTLS(src)}
	}
	cl, err := client.New(opts)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func (c *Cluster) eventually(timeout time.Duration, what string, ok func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr is a loopback address free now (testnet.FreeAddr).
func freeAddr(t testing.TB) string {
	t.Helper()
	return testnet.FreeAddr(t)
}
