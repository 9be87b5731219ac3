package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// Config says where the node keeps its data, how it is reached and how it times
// its elections and snapshots.
type Config struct {
	NodeID string
	// BindAddr is the TCP address the Raft transport listens on.
	BindAddr string
	// AdvertiseAddr is the address other nodes dial; it must be routable. It
	// may be a DNS name, which is kept as a name in the Raft configuration and
	// resolved on every dial. Empty means the address the transport listens on.
	AdvertiseAddr string
	// Dial, when set, opens connections to peers (tests resolve names with
	// it); nil dials with the system resolver.
	Dial    DialFunc
	DataDir string
	// Bootstrap makes this node form a new cluster of itself when it has no Raft
	// state yet. It is harmless on restart: existing state wins.
	Bootstrap bool
	// AwaitAdmission makes a node that starts with no Raft state answer no
	// Raft RPC until Admit or Bootstrap (see admission.go). A node with
	// state takes part at once.
	AwaitAdmission    bool
	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration
	SnapshotInterval  time.Duration
	SnapshotRetain    int
	SnapshotThreshold uint64
	// TLS, when set, makes the transport mutual TLS: only a process holding
	// a certificate from TLS's CA can connect to this node or be connected
	// to. Nil is plain TCP, which accepts any peer.
	TLS *tlsconfig.Source
	// WrapTransport, when set, wraps the TCP transport (tests use it to drop
	// or delay messages).
	WrapTransport func(raft.Transport) raft.Transport
	Logger        *zap.Logger
}

// Node is a running Raft node.
type Node struct {
	Raft      *raft.Raft
	Transport *raft.NetworkTransport
	Snapshots *raft.FileSnapshotStore
	trans     raft.Transport // as Raft sees it: gated, and wrapped in tests
	store     raftStore
	admission *admissionTransport
	storage   *storageGuard
	stopGuard context.CancelFunc
	guardDone chan struct{}
	id        raft.ServerID
	log       *zap.Logger
	existing  bool
}

// Start opens the node's stores under cfg.DataDir, starts the transport and the
// Raft node, and bootstraps a single-voter cluster when asked and needed.
func Start(cfg Config, fsm raft.FSM) (*Node, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create raft data folder: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	// The leader lease may not exceed the heartbeat timeout.
	rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, cfg.HeartbeatTimeout)
	rc.CommitTimeout = min(rc.CommitTimeout, cfg.HeartbeatTimeout/2)
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	// Group commit: the leader takes up to this many queued applies per log batch.
	rc.MaxAppendEntries = 1024
	rc.BatchApplyCh = true
	guard := newStorageGuard(cfg.DataDir, cfg.Logger)
	rc.Logger = newHCLogger(cfg.Logger.Named("raft"), guard.quiet)
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", err)
	}

	store, err := openLogStore(cfg.DataDir, rc.Logger, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("open raft log store: %w", err)
	}
	if removed, err := removeUnfinishedSnapshots(filepath.Join(cfg.DataDir, "snapshots")); err != nil {
		cfg.Logger.Warn("cannot remove unfinished snapshots", zap.Error(err))
	} else if removed > 0 {
		cfg.Logger.Info("removed unfinished snapshots left by an earlier run", zap.Int("count", removed))
	}
	snapshots, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, max(cfg.SnapshotRetain, 1), rc.Logger)
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("open raft snapshot store: %w", err)
	}
	// Pipelined replication is off (MaxRPCsInFlight 1): with it, a follower's
	// replication could stall for good after a leader change and shutdown then
	// waited forever (seen under load in the benchmarks; the same two stuck
	// goroutines as grafana/pyroscope#5518), and it buys nothing with batching.
	var stream raft.StreamLayer
	if cfg.TLS != nil {
		stream, err = newTLSStreamLayer(cfg.BindAddr, cfg.AdvertiseAddr, cfg.Dial, cfg.TLS)
	} else {
		stream, err = newNameStreamLayer(cfg.BindAddr, cfg.AdvertiseAddr, cfg.Dial)
	}
	if err != nil {
		_ = store.Close()
		if errors.Is(err, errNotAdvertisable) {
			return nil, fmt.Errorf("raft address %s is not one other nodes can reach: set CLUSTER_ADVERTISE_ADDR", cfg.BindAddr)
		}
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.BindAddr, err)
	}
	transport := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          stream,
		MaxPool:         8,
		MaxRPCsInFlight: 1,
		Timeout:         10 * time.Second,
		Logger:          rc.Logger,
	})

	if err := recoverFromPeersFile(cfg, rc, fsm, store, snapshots, transport); err != nil {
		_ = transport.Close()
		_ = store.Close()
		return nil, err
	}
	existing, err := raft.HasExistingState(store, store, snapshots)
	if err != nil {
		_ = transport.Close()
		_ = store.Close()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	admission := newAdmissionTransport(transport, existing || !cfg.AwaitAdmission)
	var trans raft.Transport = campaignGate{admissionTransport: admission, guard: guard}
	if cfg.WrapTransport != nil {
		trans = cfg.WrapTransport(trans)
	}
	stores := guardedStore{raftStore: store, guard: guard}
	r, err := raft.NewRaft(rc, fsm, stores, stores, snapshots, trans)
	if err != nil {
		_ = admission.Close()
		_ = store.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	guardCtx, stopGuard := context.WithCancel(context.Background())
	n := &Node{Raft: r, Transport: transport, Snapshots: snapshots, trans: trans, store: store, admission: admission,
		storage: guard, stopGuard: stopGuard, guardDone: make(chan struct{}),
		id: rc.LocalID, log: cfg.Logger, existing: existing}
	go func() {
		defer close(n.guardDone)
		guard.run(guardCtx, r)
	}()
	if cfg.Bootstrap {
		if err := n.Bootstrap(); err != nil {
			_ = n.Shutdown()
			return nil, err
		}
	}
	return n, nil
}

// HadState reports whether the node found Raft state on disk at start.
func (n *Node) HadState() bool { return n.existing }

// Admitted reports whether the node takes part in Raft: it had state at
// start, was started without AwaitAdmission, or was admitted since.
func (n *Node) Admitted() bool { return n.admission.Admitted() }

// Admit lets a node that started with no Raft state take part in Raft,
// granting votes only for terms after voteFloor (the cluster's term when it
// was found not to count this node as a member).
func (n *Node) Admit(voteFloor uint64) {
	if !n.admission.Admitted() {
		n.log.Info("raft node admitted", zap.String("node_id", string(n.id)), zap.Uint64("vote_floor", voteFloor))
	}
	n.admission.Admit(voteFloor)
}

// Bootstrap forms a new single-voter cluster of this node unless it had Raft
// state at start (then existing state wins and Bootstrap does nothing). It
// admits the node.
func (n *Node) Bootstrap() error {
	if n.existing {
		return nil
	}
	n.admission.Admit(0)
	boot := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: n.id, Address: n.Transport.LocalAddr(),
	}}}
	if err := n.Raft.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft cluster: %w", err)
	}
	n.log.Info("raft cluster bootstrapped", zap.String("node_id", string(n.id)), zap.String("address", string(n.Transport.LocalAddr())))
	return nil
}

// ID is this node's Raft server id.
func (n *Node) ID() raft.ServerID { return n.id }

// WaitForLeader blocks until the cluster has a leader or ctx ends.
func (n *Node) WaitForLeader(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr, _ := n.Raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no raft leader elected: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Storage reports whether the node can write its Raft storage (see
// storage.go).
func (n *Node) Storage() StorageStatus { return n.storage.status() }

// CheckStorage writes and syncs a small file beside the Raft stores, unless
// they are already known unwritable, and returns why they cannot be
// written, if so. A node that has just won an election calls it before it
// serves; a failure makes the node hand leadership over.
func (n *Node) CheckStorage() error { return n.storage.check() }

// Shutdown stops the node and closes its stores.
func (n *Node) Shutdown() error {
	n.stopGuard()
	<-n.guardDone
	err := n.Raft.Shutdown().Error()
	if cerr := n.admission.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if cerr := n.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// removeUnfinishedSnapshots deletes the temporary folders ("<id>.tmp") that
// snapshots interrupted by a crash or a full disk leave behind. Nothing reads
// them, and the snapshot store warns about each one every time it lists
// snapshots (every cluster status call). Only called before Raft starts, when
// no snapshot can be in progress.
func removeUnfinishedSnapshots(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// PeersFile is the file, in the data folder, that replaces the node's Raft
// configuration at its next start (hashicorp/raft's peers.json format:
// [{"id": "...", "address": "...", "non_voter": false}]). It is the explicit
// way to restore a cluster from one node's data or snapshot: a node never
// takes a configuration of its own making from its disk alone, since it
// cannot tell a restore from a partial loss of its data.
const PeersFile = "peers.json"

// recoverFromPeersFile applies PeersFile when present (raft.RecoverCluster),
// then renames it so that it applies once.
func recoverFromPeersFile(cfg Config, rc *raft.Config, fsm raft.FSM, store raftStore, snapshots raft.SnapshotStore, trans raft.Transport) error {
	path := filepath.Join(cfg.DataDir, PeersFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	conf, err := raft.ReadConfigJSON(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := raft.RecoverCluster(rc, fsm, store, store, snapshots, trans, conf); err != nil {
		return fmt.Errorf("recover the raft configuration from %s: %w", path, err)
	}
	if err := os.Rename(path, path+".applied"); err != nil {
		return fmt.Errorf("recovered from %s but cannot rename it (it would apply again at the next start): %w", path, err)
	}
	var ids []string
	for _, s := range conf.Servers {
		ids = append(ids, string(s.ID))
	}
	cfg.Logger.Warn("raft configuration replaced from the peers file", zap.String("file", path), zap.Strings("servers", ids))
	return nil
}
