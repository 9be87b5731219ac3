// Package service is the coordinator's composition root: it builds the Raft
// node, the state machine, the use cases, the forwarding to the leader and the
// gRPC ports by hand, and runs them until its context ends. It is public
// within the module so that `gaia up` and tests can run coordinators
// in-process; everything it wires stays in internal/.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/telemetry"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
	"github.com/gaia-platform/gaia/services/coordinator/internal/forward"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/ports"
	"github.com/gaia-platform/gaia/services/coordinator/internal/raftnode"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// Options changes how New builds a coordinator, for tests.
type Options struct {
	// WrapTransport, when set, wraps the Raft transport (to drop or delay
	// messages in partition tests).
	WrapTransport func(raft.Transport) raft.Transport
	// Resolver, when set, resolves every peer's host name (Raft and gRPC)
	// instead of the system resolver, and decides whether a dead voter's
	// name is gone (tests stand in for a cluster's DNS with it).
	Resolver Resolver
}

// Service is a built coordinator, listening but not yet serving.
type Service struct {
	cfg      Config
	log      *zap.Logger
	lis      net.Listener
	grpc     *grpcserver.Server
	node     *raftnode.Node
	app      *app.Coordinator
	forward  *forward.Forwarder
	grpcAddr string
	tls      *tlsconfig.Source // gRPC; nil is plaintext
	auth     *auth.Runtime
	killed   atomic.Bool

	metricsLis net.Listener
	registry   *prometheus.Registry
	metrics    *collector

	resolver       Resolver
	customResolver bool
	// deferBootstrap: this node may form the cluster, but only once every
	// other known node has said it has none (see membership.go).
	deferBootstrap bool
	waitLogged     bool // the wait for unreachable known nodes was logged
}

// New opens the listener, starts the Raft node and wires the gRPC services.
func New(ctx context.Context, cfg Config, log *zap.Logger, opts ...Options) (*Service, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	rt, signer, err := buildAuth(cfg.Auth, log)
	if err != nil {
		return nil, err
	}
	grpcTLS, err := tlsconfig.Open(cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	raftTLS, err := raftTLS(cfg, log)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for grpc on %s: %w", cfg.ListenAddr, err)
	}
	grpcAddr := cfg.AdvertiseAddr
	if grpcAddr == "" {
		grpcAddr = advertisable(lis.Addr(), cfg.Cluster.AdvertiseAddr)
	}
	s := &Service{cfg: cfg, log: log, lis: lis, grpcAddr: grpcAddr, resolver: o.Resolver, customResolver: o.Resolver != nil}
	if s.resolver == nil && cfg.TestHostsFile != "" {
		hosts := hostsFile(cfg.TestHostsFile)
		if _, err := hosts.read(); err != nil {
			_ = lis.Close()
			return nil, fmt.Errorf("%s: %w", TestHostsEnv, err)
		}
		log.Warn("peer names resolve from a test hosts file, not DNS: for tests only",
			zap.String("variable", TestHostsEnv), zap.String("file", cfg.TestHostsFile))
		s.resolver, s.customResolver = hosts, true
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	// A bootstrap node that knows of other nodes asks them first.
	s.deferBootstrap = cfg.Cluster.Enabled && cfg.Cluster.Bootstrap && s.knowsOthers()
	if cfg.Cluster.Enabled && cfg.Cluster.Bootstrap && !s.knowsOthers() {
		// LoadConfig refuses this with no discovery nodes at all; a list of
		// only this node gets here (and in-process single-node clusters).
		log.Warn("a clustered bootstrap node that names no other node forms a new cluster whenever it starts with no raft state, also after losing its data; list the other nodes in CLUSTER_DISCOVERY_NODES",
			zap.String("node_id", cfg.Cluster.NodeID))
	}
	store := state.NewStoreRetaining(cfg.Session.EventRetention, cfg.Session.SnapshotEvents)
	machine := fsm.New(store)
	node, err := raftnode.Start(raftnode.Config{
		NodeID:        cfg.Cluster.NodeID,
		BindAddr:      cfg.Cluster.BindAddr,
		AdvertiseAddr: cfg.Cluster.AdvertiseAddr,
		DataDir:       cfg.Cluster.DataDir,
		Bootstrap:     cfg.Cluster.Bootstrap && !s.deferBootstrap,
		// With no Raft state, new or wiped: no Raft RPC until membership.go
		// has told which.
		AwaitAdmission:    cfg.Cluster.Enabled && s.knowsOthers(),
		Dial:              s.dial,
		HeartbeatTimeout:  cfg.Raft.HeartbeatTimeout,
		ElectionTimeout:   cfg.Raft.ElectionTimeout,
		SnapshotInterval:  cfg.Raft.SnapshotInterval,
		SnapshotRetain:    cfg.Raft.SnapshotRetain,
		SnapshotThreshold: uint64(cfg.Raft.SnapshotThreshold),
		TLS:               raftTLS,
		WrapTransport:     o.WrapTransport,
		Logger:            log,
	}, machine)
	if err != nil {
		_ = lis.Close()
		return nil, err
	}

	coord := app.New(app.Config{
		NodeID:            cfg.Cluster.NodeID,
		GRPCAddress:       grpcAddr,
		LeaseTimeout:      cfg.Session.LeaseTimeout,
		HeartbeatInterval: cfg.Session.HeartbeatInterval,
		FailoverGrace:     cfg.Session.FailoverGrace,
		JoinSecret:        cfg.Cluster.JoinSecret,
		LogEncoding:       cfg.Raft.LogEncoding,
		Signer:            signer,
		Limits:            app.Limits{MaxLocksPerSession: cfg.Session.MaxLocks, MaxLabelBytes: cfg.Session.MaxLabelBytes, MaxSessionsPerJoinSecret: cfg.Session.MaxPerJoinSecret},
		CheckStorage:      node.CheckStorage,
		StorageError:      func() error { return node.Storage().Err },
		ConfirmLeadership: node.ConfirmLeadership,
	}, node.Raft, node.Snapshots, machine, log)
	fwd := forward.New(cfg.Cluster.NodeID, coord, grpcclient.WithTLS(grpcTLS))
	fwd.Dial = s.dialGRPC

	s.metrics = &collector{s: s, store: store}
	srv := grpcserver.New(grpcserver.Options{Name: "coordinator", Logger: log, ShutdownTimeout: cfg.ShutdownTimeout, HealthListenAddr: cfg.HealthListenAddr, Limits: grpcLimits(cfg.GRPCLimits), TLS: grpcTLS, Auth: rt.Authorizer()},
		grpc.ChainStreamInterceptor(s.metrics.countHeartbeats))
	(&ports.Servers{App: coord, Forward: fwd, MaxReplyBytes: cfg.MaxReplyBytes}).Register(srv.GRPC())

	log.Info("coordinator ready",
		zap.String("grpc_address", lis.Addr().String()),
		zap.String("advertised_grpc_address", grpcAddr),
		zap.String("raft_address", string(node.Transport.LocalAddr())),
		zap.String("node_id", cfg.Cluster.NodeID),
		zap.String("data_dir", cfg.Cluster.DataDir),
		zap.Bool("grpc_tls", grpcTLS != nil))
	s.grpc, s.node, s.app, s.forward, s.tls = srv, node, coord, fwd, grpcTLS
	if cfg.MetricsAddr != "" {
		if s.metricsLis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			_ = lis.Close()
			_ = node.Shutdown()
			return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.MetricsAddr, err)
		}
		s.registry = telemetry.NewRegistry()
		s.registry.MustRegister(s.metrics)
	}
	s.auth = rt
	return s, nil
}

// buildAuth reads the keys: the public ones every node verifies with, and
// the signing key a node issues credentials with (optional: a node without
// it answers IssueCredential with FAILED_PRECONDITION).
func buildAuth(cfg auth.Config, log *zap.Logger) (*auth.Runtime, *auth.Signer, error) {
	rt, err := auth.NewRuntime(cfg, nil, log.Named("auth"))
	if err != nil {
		return nil, nil, err
	}
	if cfg.SigningKeyFile == "" {
		return rt, nil, nil
	}
	key, err := auth.ReadPrivateKey(cfg.SigningKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("AUTH_SIGNING_KEY_FILE: %w", err)
	}
	signer := auth.NewSigner(key)
	if v := rt.Verifier(); v != nil {
		if !v.KnowsKey(signer.KeyID()) {
			return nil, nil, fmt.Errorf("AUTH_SIGNING_KEY_FILE: its public key (kid %s) is not in AUTH_PUBLIC_KEYS_FILE, so nothing it signs would verify", signer.KeyID())
		}
	}
	return rt, signer, nil
}

// ephemeralRaftCAValidity outlives any process: the CA exists only in memory.
const ephemeralRaftCAValidity = 10 * 365 * 24 * time.Hour

// raftTLS is the Raft transport's mutual TLS: the member certificate from
// files when configured, else, for a standalone node (the configuration
// refuses a clustered one without files), a CA made in memory now. A
// standalone node never dials a peer, and no other process can hold a
// certificate of that CA, so nothing else can speak Raft to it.
func raftTLS(cfg Config, log *zap.Logger) (*tlsconfig.Source, error) {
	if cfg.Cluster.TLS.Enabled() {
		if cfg.Cluster.TLS.CAFile == cfg.TLS.CAFile {
			log.Warn("the Raft port trusts the same CA as the gRPC ports: every service certificate it signed can speak Raft; set CLUSTER_TLS_CA_FILE to a CA of the cluster's own",
				zap.String("ca_file", cfg.Cluster.TLS.CAFile))
		}
		return tlsconfig.Open(cfg.Cluster.TLS, log.Named("raft_tls"))
	}
	if cfg.Cluster.Enabled {
		return nil, errors.New("CLUSTER_TLS_CERT_FILE: a clustered coordinator needs a Raft member certificate")
	}
	ca, err := tlsconfig.NewAuthority("GAIA coordinator "+cfg.Cluster.NodeID+" in-memory Raft CA", ephemeralRaftCAValidity)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.Cluster.BindAddr)
	return ca.Ephemeral(cfg.Cluster.NodeID, []string{host}, ephemeralRaftCAValidity)
}

// knowsOthers reports whether CLUSTER_DISCOVERY_NODES names a node other
// than this one, or a CLUSTER_DISCOVERY_PATTERN may (a StatefulSet's pods
// are peers by definition, however many exist now).
func (s *Service) knowsOthers() bool {
	if s.cfg.Cluster.DiscoveryPattern != "" {
		return true
	}
	for _, addr := range s.cfg.Cluster.DiscoveryNodes {
		if addr != s.grpcAddr {
			return true
		}
	}
	return false
}

// advertisable is the listener's address, with an unspecified host replaced
// by the Raft advertise host (or loopback).
func advertisable(addr net.Addr, raftAdvertise string) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if h, _, err := net.SplitHostPort(raftAdvertise); err == nil && h != "" {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// Addr is where the gRPC server listens.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// GRPCAddress is the gRPC address this node advertises to the others.
func (s *Service) GRPCAddress() string { return s.grpcAddr }

// RaftAddr is the address other Raft nodes reach this one at.
func (s *Service) RaftAddr() string { return string(s.node.Transport.LocalAddr()) }

// NodeID is this node's Raft server id.
func (s *Service) NodeID() string { return s.cfg.Cluster.NodeID }

// WaitForLeader blocks until the cluster has elected a leader.
func (s *Service) WaitForLeader(ctx context.Context) error { return s.node.WaitForLeader(ctx) }

// Raft exposes the node for tests and benchmarks that watch the cluster.
func (s *Service) Raft() *raft.Raft { return s.node.Raft }

// Run serves until ctx ends. On the way out a leader hands leadership to
// another voter first, so that a planned stop costs no election timeout; then
// the gRPC server drains and Raft stops.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	appCtx, stopApp := context.WithCancel(context.Background())
	wg.Add(1)
	// The long-lived loops restart after a panic (logged with its stack)
	// rather than end the process, which `gaia up` shares with every service.
	go func() {
		defer wg.Done()
		background.Loop(appCtx, s.log, "leadership", background.Options{}, s.app.Run)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		// This node's own replica is the revocation list.
		background.Loop(appCtx, s.log, "revocations", background.Options{}, func(ctx context.Context) {
			s.auth.Run(ctx, func(context.Context) ([]auth.Revoked, error) {
				list, _ := s.app.Revocations()
				return list, nil
			})
		})
	}()
	if s.cfg.Cluster.Enabled && (len(s.cfg.Cluster.DiscoveryNodes) > 0 || s.cfg.Cluster.DiscoveryPattern != "") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ensureMember(ctx, s.deferBootstrap)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		background.Loop(appCtx, s.log, "readiness", background.Options{}, s.watchReadiness)
	}()
	if s.metricsLis != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := telemetry.Serve(appCtx, s.metricsLis, s.registry); err != nil {
				s.log.Warn("metrics server stopped", zap.Error(err))
			}
		}()
	}
	if s.cfg.Cluster.DeadServerGrace > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			background.Loop(appCtx, s.log, "dead-servers", background.Options{}, s.cleanDeadServers)
		}()
	}

	serveCtx, stopServe := context.WithCancel(context.Background())
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.grpc.Serve(serveCtx, s.lis) }()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopServe()
		stopApp()
		wg.Wait()
		_ = s.node.Shutdown()
		s.forward.Close()
		if s.killed.Load() {
			return nil
		}
		return err
	}

	if !s.killed.Load() {
		s.handOverLeadership()
	}
	stopServe()
	err := <-serveErr
	stopApp()
	wg.Wait()
	s.forward.Close()
	if rerr := s.node.Shutdown(); rerr != nil {
		err = errors.Join(err, fmt.Errorf("stop raft: %w", rerr))
	}
	return err
}

// Kill stops the node at once, as kill -9 would: no leadership hand-over, no
// draining; connections drop and peers stop hearing from it. Run returns.
// Tests use it to fail a node the hard way inside one process.
func (s *Service) Kill() {
	s.killed.Store(true)
	s.grpc.GRPC().Stop()
}

func (s *Service) handOverLeadership() {
	r := s.node.Raft
	if r.State() != raft.Leader {
		return
	}
	cfg := r.GetConfiguration()
	if cfg.Error() != nil {
		return
	}
	voters := 0
	for _, srv := range cfg.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters < 2 {
		return
	}
	if err := r.LeadershipTransfer().Error(); err != nil {
		s.log.Warn("leadership hand-over before stopping failed", zap.Error(err))
		return
	}
	s.log.Info("leadership handed over before stopping")
}

// MetricsAddr is where /metrics is served, or nil when COORDINATOR_PROMETHEUS_LISTEN_ADDR is empty.
func (s *Service) MetricsAddr() net.Addr {
	if s.metricsLis == nil {
		return nil
	}
	return s.metricsLis.Addr()
}

// grpcLimits are the configured limits with heartbeats uncounted per
// client: a session has one heartbeat stream, sessions are capped
// (CLUSTER_JOIN_SECRET_MAX_SESSIONS), and a follower relays all of its
// sessions' heartbeats to the leader from one address.
func grpcLimits(l grpcserver.Limits) grpcserver.Limits {
	l.Uncounted = append(l.Uncounted, coordinatorv1.SessionService_Heartbeat_FullMethodName)
	return l
}
