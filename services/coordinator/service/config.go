package service

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// Config is the coordinator's configuration, read from the environment.
type Config struct {
	// ListenAddr is the gRPC listen address (COORDINATOR_LISTEN_ADDR).
	ListenAddr string
	// HealthListenAddr, when set, also serves gRPC health alone, in plaintext
	// (COORDINATOR_HEALTH_LISTEN_ADDR), for probes that cannot speak TLS; empty serves none.
	HealthListenAddr string
	// GRPCLimits bound the gRPC server's connections and streams
	// (GRPC_MAX_CONNECTIONS, GRPC_MAX_CONCURRENT_STREAMS,
	// GRPC_MAX_STREAMS_PER_CLIENT); zero fields take the defaults.
	GRPCLimits grpcserver.Limits
	// MaxReplyBytes bounds every reply (GRPC_MAX_REPLY_BYTES, default
	// 3 MiB): list pages and released lock keys stop short of it. Keep it
	// under what clients accept (4 MiB by default); 0 takes the default.
	MaxReplyBytes int
	// AdvertiseAddr is the gRPC address other nodes forward to
	// (COORDINATOR_ADVERTISE_ADDR); empty derives it from the listener.
	AdvertiseAddr string
	// MetricsAddr serves Prometheus metrics at /metrics
	// (COORDINATOR_PROMETHEUS_LISTEN_ADDR); empty serves none.
	MetricsAddr     string
	ShutdownTimeout time.Duration
	// TLS is the gRPC port's certificate and the CA that verifies the other
	// nodes' gRPC ports when forwarding (TLS_CERT_FILE, TLS_KEY_FILE,
	// TLS_CA_FILE); none means plaintext.
	TLS     tlsconfig.Files
	Cluster ClusterConfig
	Raft    RaftConfig
	Session SessionConfig
	// Auth verifies callers' credentials and, with AUTH_SIGNING_KEY_FILE,
	// issues them (internal/auth).
	Auth auth.Config
	// TestHostsFile (GAIA_TEST_HOSTS), for tests only, replaces DNS for
	// peer names with a hosts-style file (see TestHostsEnv); empty, the
	// default, uses the system resolver.
	TestHostsFile string
}

// ClusterConfig places the node in its cluster.
type ClusterConfig struct {
	// Enabled runs the node as a member of a multi-node cluster. When false the
	// node is a standalone single-voter cluster that bootstraps itself.
	Enabled        bool
	NodeID         string
	BindAddr       string
	AdvertiseAddr  string
	DataDir        string
	Bootstrap      bool
	DiscoveryNodes []string
	// DiscoveryPattern (CLUSTER_DISCOVERY_PATTERN) names every pod of a
	// StatefulSet with {ordinal} for its number; the node knows each name
	// that resolves (discovery.go).
	DiscoveryPattern string
	// DeadServerGrace, when positive, lets the leader remove a voter it has
	// not reached for this long and whose address no longer resolves (a pod
	// deleted for good); zero never removes anyone.
	DeadServerGrace time.Duration
	// JoinSecret, when set, must accompany every RegisterSession.
	JoinSecret string
	// TLS is this member's certificate for the Raft port and the cluster CA
	// that signs every member's (CLUSTER_TLS_CERT_FILE, CLUSTER_TLS_KEY_FILE,
	// CLUSTER_TLS_CA_FILE; default the TLS_* files). The Raft transport is
	// always mutual TLS: required when Enabled; a standalone node without
	// files makes a CA in memory that no other process can hold a
	// certificate of.
	TLS tlsconfig.Files
}

// RaftConfig tunes Raft.
type RaftConfig struct {
	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration
	SnapshotInterval  time.Duration
	SnapshotRetain    int
	SnapshotThreshold int
	// LogEncoding is how this node writes commands while it leads
	// (RAFT_LOG_ENCODING): protobuf, or json while the cluster still has
	// nodes from before protobuf entries. Every node reads both.
	LogEncoding fsm.Encoding
}

// SessionConfig times session liveness.
type SessionConfig struct {
	LeaseTimeout      time.Duration
	HeartbeatInterval time.Duration
	// FailoverGrace extends every lease when a node becomes leader.
	FailoverGrace time.Duration
	// MaxLocks (SESSION_MAX_LOCKS) and MaxLabelBytes
	// (SESSION_MAX_LABEL_BYTES) cap one session; MaxPerJoinSecret
	// (CLUSTER_JOIN_SECRET_MAX_SESSIONS) caps live sessions.
	MaxLocks         int
	MaxLabelBytes    int
	MaxPerJoinSecret int
	// EventRetention (SESSION_EVENT_RETENTION) is how many session events
	// each node keeps in memory for watchers that resume; SnapshotEvents
	// (SESSION_SNAPSHOT_EVENTS) how many of the newest a Raft snapshot
	// carries beside the state.
	EventRetention int
	SnapshotEvents int
}

// LoadConfig reads the coordinator's variables; problems are recorded in l.
func LoadConfig(l *config.Loader) Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "node-1"
	}
	c := Config{
		ListenAddr:       l.ListenAddr("COORDINATOR_LISTEN_ADDR", ":7001"),
		HealthListenAddr: l.ListenAddr("COORDINATOR_HEALTH_LISTEN_ADDR", ""),
		GRPCLimits:       grpcserver.LoadLimits(l),
		MaxReplyBytes:    grpcserver.LoadMaxReplyBytes(l),
		AdvertiseAddr:    l.DialAddr("COORDINATOR_ADVERTISE_ADDR", ""),
		MetricsAddr:      l.ListenAddr("COORDINATOR_PROMETHEUS_LISTEN_ADDR", ""),
		ShutdownTimeout:  l.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond),
	}
	c.Cluster.Enabled = l.Bool("CLUSTER_ENABLED", false)
	c.Cluster.NodeID = l.NonEmpty("CLUSTER_NODE_ID", host)
	c.Cluster.BindAddr = l.ListenAddr("CLUSTER_BIND_ADDR", "127.0.0.1:8300")
	c.Cluster.AdvertiseAddr = l.DialAddr("CLUSTER_ADVERTISE_ADDR", "")
	c.Cluster.DataDir = l.NonEmpty("CLUSTER_DATA_DIR", filepath.Join("data", "raft"))
	c.Cluster.Bootstrap = l.Bool("CLUSTER_BOOTSTRAP", !c.Cluster.Enabled)
	// A StatefulSet gives every pod the same environment: naming the node
	// that may bootstrap lets exactly one of them (pod 0) do it.
	if id := l.String("CLUSTER_BOOTSTRAP_NODE_ID", ""); id != "" {
		c.Cluster.Bootstrap = id == c.Cluster.NodeID
	}
	c.Cluster.DeadServerGrace = l.Duration("CLUSTER_DEAD_SERVER_GRACE", 0, 0)
	c.Cluster.DiscoveryNodes = l.DialAddrList("CLUSTER_DISCOVERY_NODES", nil)
	if c.Cluster.DiscoveryPattern = l.String("CLUSTER_DISCOVERY_PATTERN", ""); c.Cluster.DiscoveryPattern != "" {
		if want := validDiscoveryPattern(c.Cluster.DiscoveryPattern); want != "" {
			l.Reject("CLUSTER_DISCOVERY_PATTERN", c.Cluster.DiscoveryPattern, want)
		}
	}
	c.Cluster.JoinSecret = l.String("CLUSTER_JOIN_SECRET", "")
	if v := l.String("CLUSTER_ADMIN_TOKEN", ""); v != "" {
		l.Reject("CLUSTER_ADMIN_TOKEN", "(set)", "unset: membership changes need an admin credential now (gaia auth issue --role admin; a node that joins presents it through AUTH_TOKEN_FILE)")
	}
	c.Auth = auth.LoadConfig(l)
	c.TLS = tlsconfig.Load(l, "", tlsconfig.Files{})
	c.Cluster.TLS = tlsconfig.Load(l, "CLUSTER_", c.TLS)
	c.TestHostsFile = l.String(TestHostsEnv, "")

	c.Raft.HeartbeatTimeout = l.Duration("RAFT_HEARTBEAT_TIMEOUT", 150*time.Millisecond, 5*time.Millisecond)
	c.Raft.ElectionTimeout = l.Duration("RAFT_ELECTION_TIMEOUT", 300*time.Millisecond, 5*time.Millisecond)
	c.Raft.SnapshotInterval = l.Duration("RAFT_SNAPSHOT_INTERVAL", 120*time.Second, 5*time.Millisecond)
	c.Raft.SnapshotRetain = l.Int("RAFT_SNAPSHOT_RETAIN", 2, 1, 100)
	c.Raft.SnapshotThreshold = l.Int("RAFT_SNAPSHOT_THRESHOLD", 8192, 1, 1<<30)
	c.Raft.LogEncoding, _ = fsm.ParseEncoding(l.Enum("RAFT_LOG_ENCODING", fsm.Protobuf.String(), fsm.Protobuf.String(), fsm.JSON.String()))

	c.Session.LeaseTimeout = l.Duration("SESSION_LEASE_TIMEOUT", 30*time.Second, 10*time.Millisecond)
	c.Session.HeartbeatInterval = l.Duration("SESSION_HEARTBEAT_INTERVAL", 10*time.Second, 5*time.Millisecond)
	c.Session.MaxLocks = l.Int("SESSION_MAX_LOCKS", 1000, 1, 1_000_000)
	c.Session.MaxLabelBytes = l.Int("SESSION_MAX_LABEL_BYTES", 4096, 64, 1<<20)
	c.Session.MaxPerJoinSecret = l.Int("CLUSTER_JOIN_SECRET_MAX_SESSIONS", 10000, 1, 10_000_000)
	c.Session.EventRetention = l.Int("SESSION_EVENT_RETENTION", state.DefaultEventRetention, 1, 10_000_000)
	c.Session.SnapshotEvents = l.Int("SESSION_SNAPSHOT_EVENTS", min(state.DefaultSnapshotEvents, c.Session.EventRetention), 0, 10_000_000)
	if c.Session.SnapshotEvents > c.Session.EventRetention {
		l.Reject("SESSION_SNAPSHOT_EVENTS", strconv.Itoa(c.Session.SnapshotEvents), "at most SESSION_EVENT_RETENTION ("+strconv.Itoa(c.Session.EventRetention)+"): a snapshot carries part of the history a node keeps")
	}
	// A client gives up an unanswered stream after 1.5 intervals, then
	// reconnects and beats: two intervals cover it.
	c.Session.FailoverGrace = l.Duration("SESSION_FAILOVER_GRACE", 2*c.Session.HeartbeatInterval, 0)

	if c.Raft.ElectionTimeout < c.Raft.HeartbeatTimeout {
		l.Reject("RAFT_ELECTION_TIMEOUT", c.Raft.ElectionTimeout.String(), "a duration no shorter than RAFT_HEARTBEAT_TIMEOUT ("+c.Raft.HeartbeatTimeout.String()+")")
	}
	if c.Session.HeartbeatInterval >= c.Session.LeaseTimeout {
		l.Reject("SESSION_HEARTBEAT_INTERVAL", c.Session.HeartbeatInterval.String(), "a duration shorter than SESSION_LEASE_TIMEOUT ("+c.Session.LeaseTimeout.String()+")")
	}
	if c.Cluster.Enabled && !c.Cluster.Bootstrap && len(c.Cluster.DiscoveryNodes) == 0 && c.Cluster.DiscoveryPattern == "" {
		l.Reject("CLUSTER_DISCOVERY_NODES", "", "at least one known node to join through (or CLUSTER_DISCOVERY_PATTERN) when CLUSTER_ENABLED=true and CLUSTER_BOOTSTRAP=false")
	}
	// A bootstrap node with no Raft state cannot tell the cluster's very
	// first start from a restart after losing its data; only the other nodes
	// can. Without them it would found a second cluster.
	if c.Cluster.Enabled && c.Cluster.Bootstrap && len(c.Cluster.DiscoveryNodes) == 0 && c.Cluster.DiscoveryPattern == "" {
		l.Reject("CLUSTER_DISCOVERY_NODES", "", "the cluster's other nodes (or CLUSTER_DISCOVERY_PATTERN) when this node may bootstrap (CLUSTER_ENABLED=true with CLUSTER_BOOTSTRAP=true, or CLUSTER_BOOTSTRAP_NODE_ID naming it): "+
			"it forms a cluster only once they all answer that they have none, so that after losing its data it rejoins them instead of founding a second one")
	}
	if c.Cluster.Enabled && !c.Cluster.TLS.Enabled() {
		l.Reject("CLUSTER_TLS_CERT_FILE", "", "a Raft member certificate (with CLUSTER_TLS_KEY_FILE and CLUSTER_TLS_CA_FILE, or the TLS_* files) when CLUSTER_ENABLED=true: "+
			"the Raft transport only speaks mutual TLS; `gaia certs dev` makes a set to try")
	}
	return c
}
