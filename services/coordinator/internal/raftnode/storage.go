package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Storage health. A node that cannot write its Raft log or stable store (a
// full disk, an I/O error, a file system remounted read-only) cannot serve
// as leader: Raft steps a leader down the moment it fails to write its own
// log, so every write it takes fails. Left alone, such a node keeps standing
// for election, and when its log is the longest it keeps winning, stepping
// down at its first write, and the cluster goes without a usable leader for
// as long as the disk stays full (issue 17: 7 elections in a row, each lost at
// once).
//
// So the node watches its storage. A write of the log or stable store that
// fails, or a probe (a file written and synced beside them) that fails,
// marks the storage unwritable; from then until a probe succeeds again:
//
//   - the node asks no one for a vote: its requests for votes and pre-votes
//     are answered, here, as refused, so it never stands for election and
//     never raises its term (it still votes and follows);
//   - while it leads, it hands leadership to another voter at once;
//   - it is not ready (readiness), and says why in its cluster status and
//     metrics.
//
// A probe runs every storageProbeInterval while the storage is writable, and
// every storageRecoveryInterval while it is not, so that the node takes part
// again on its own when space returns. The probe is what finds a full disk
// on a node that writes nothing, and on a busy leader too: the WAL writes
// into segment files preallocated to their full size, so its appends keep
// succeeding on a full disk until the segment is used up and the next one
// cannot be created. Stepping out at the probe's first failure hands
// leadership over while the leader can still write, instead of at a failed
// rotation.

const (
	// storageProbeFile is written, synced and removed by every probe.
	storageProbeFile = ".write-probe"
	// storageCheckBytes is what a routine probe writes: is the disk writable?
	storageCheckBytes = 4 << 10
	// storageRecoveryBytes is what a probe of unwritable storage writes:
	// room for a few batches of the log, so that a disk with a few
	// kilobytes freed does not bring the node back only to fail again.
	storageRecoveryBytes = 1 << 20
	storageProbeInterval = time.Second
	// storageRecoveryInterval is how often unwritable storage is probed.
	storageRecoveryInterval = time.Second
)

type handOverOutcome int

const (
	handOverNone handOverOutcome = iota
	handOverFailed
	handOverDone
)

// storageGuard tracks whether this node can write its Raft storage.
type storageGuard struct {
	dir string
	log *zap.Logger
	// probe writes size bytes beside the Raft stores and syncs them; tests
	// replace it.
	probe                     func(size int) error
	checkEvery, recoveryEvery time.Duration

	mu       sync.Mutex
	err      error // nil while the storage is writable
	since    time.Time
	failures uint64 // times the storage became unwritable
	// handedOver is the last logged outcome of handing leadership over in
	// this unwritable period.
	handedOver handOverOutcome

	wake chan struct{} // something failed: look at leadership now
}

func newStorageGuard(dir string, log *zap.Logger) *storageGuard {
	g := &storageGuard{dir: dir, log: log, checkEvery: storageProbeInterval, recoveryEvery: storageRecoveryInterval, wake: make(chan struct{}, 1)}
	g.probe = g.writeProbe
	// A probe interrupted by a crash leaves its file behind.
	_ = os.Remove(filepath.Join(dir, storageProbeFile))
	return g
}

// StorageStatus is whether the node can write its Raft storage.
type StorageStatus struct {
	// Err is the last failure while the storage is unwritable, nil while it
	// is writable.
	Err error
	// Since is when the storage became unwritable.
	Since time.Time
	// Failures counts the times the storage became unwritable since start.
	Failures uint64
}

func (g *storageGuard) status() StorageStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return StorageStatus{Err: g.err, Since: g.since, Failures: g.failures}
}

// failed records a failed write. Only the change from writable is logged:
// a follower on a full disk fails every append the leader sends it.
func (g *storageGuard) failed(op string, err error) {
	g.mu.Lock()
	first := g.err == nil
	if first {
		g.err = fmt.Errorf("%s: %w", op, err)
		g.since = time.Now()
		g.failures++
		g.handedOver = handOverNone
	}
	g.mu.Unlock()
	if first {
		g.log.Error("raft storage cannot be written: this node stands for no election and gives up leadership until it can",
			zap.String("operation", op), zap.String("data_dir", g.dir), zap.Error(err))
	}
	g.poke()
}

func (g *storageGuard) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *storageGuard) recovered() {
	g.mu.Lock()
	was, since := g.err, g.since
	g.err = nil
	g.mu.Unlock()
	if was != nil {
		g.log.Info("raft storage writable again: this node stands for election again",
			zap.Duration("unwritable_for", time.Since(since).Round(time.Millisecond)), zap.NamedError("last_error", was))
	}
}

// check probes the storage now, unless it is already known unwritable (the
// guard's loop probes it then), and returns why it cannot be written.
func (g *storageGuard) check() error {
	if st := g.status(); st.Err != nil {
		g.poke()
		return st.Err
	}
	if err := g.probe(storageCheckBytes); err != nil {
		g.failed("write probe", err)
		return g.status().Err
	}
	return nil
}

// campaignHeld reports whether this node must not stand for election.
func (g *storageGuard) campaignHeld() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err != nil
}

// heldCampaignNoise are the records Raft writes at every turn of a
// campaign the guard holds, and at every append a follower on a full disk
// fails: the guard has logged the cause once.
var heldCampaignNoise = map[string]bool{
	"heartbeat timeout reached, starting election":           true,
	"entering candidate state":                               true,
	"pre-vote campaign failed, waiting for election timeout": true,
	"Election timeout reached, restarting election":          true,
	"failed to append to logs":                               true,
}

// quiet says which of Raft's records to write at debug level: while the
// storage is unwritable, those that repeat for as long as it stays so.
func (g *storageGuard) quiet(msg string) bool {
	return heldCampaignNoise[msg] && g.campaignHeld()
}

// leadership is the part of *raft.Raft the guard uses.
type leadership interface {
	State() raft.RaftState
	LeadershipTransfer() raft.Future
}

// run probes the storage and hands leadership over while it is unwritable,
// until ctx ends.
func (g *storageGuard) run(ctx context.Context, r leadership) {
	next := time.Now().Add(g.checkEvery)
	unwritable := false
	timer := time.NewTimer(g.checkEvery)
	defer timer.Stop()
	for {
		// Failures come as often as the leader sends entries; only the
		// change to unwritable brings the next probe forward.
		if now := g.status().Err != nil; now != unwritable {
			unwritable = now
			if unwritable {
				next = time.Now().Add(g.recoveryEvery)
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-g.wake:
			if unwritable || g.status().Err != nil {
				g.handOver(r)
			}
			continue
		case <-timer.C:
		}
		if g.status().Err != nil {
			g.handOver(r)
			if err := g.probe(storageRecoveryBytes); err == nil {
				g.recovered()
			}
		} else if err := g.probe(storageCheckBytes); err != nil {
			g.failed("write probe", err)
		}
		if g.status().Err != nil {
			next = time.Now().Add(g.recoveryEvery)
		} else {
			next = time.Now().Add(g.checkEvery)
		}
	}
}

// handOver gives leadership to another voter while this node leads. Raft
// has already stepped down when its own log write failed; this covers a
// failure found otherwise (a probe, the stable store) and a node elected
// before it knew. It is tried again at every probe while the node leads;
// the outcome is logged when it changes.
func (g *storageGuard) handOver(r leadership) {
	if r.State() != raft.Leader {
		return
	}
	err := r.LeadershipTransfer().Error()
	if errors.Is(err, raft.ErrNotLeader) {
		return
	}
	outcome := handOverDone
	if err != nil {
		outcome = handOverFailed
	}
	g.mu.Lock()
	logIt := g.handedOver != outcome
	g.handedOver = outcome
	g.mu.Unlock()
	switch {
	case !logIt:
	case err != nil:
		g.log.Warn("cannot hand leadership over while the raft storage cannot be written; trying again every second", zap.Error(err))
	default:
		g.log.Warn("leadership handed over: the raft storage cannot be written")
	}
}

// writeProbe writes size bytes to a file beside the Raft stores, syncs it
// and removes it.
func (g *storageGuard) writeProbe(size int) (err error) {
	path := filepath.Join(g.dir, storageProbeFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if rerr := os.Remove(path); rerr != nil && err == nil {
			err = rerr
		}
	}()
	buf := make([]byte, 64<<10)
	for left := size; left > 0; left -= len(buf) {
		if _, err := f.Write(buf[:min(left, len(buf))]); err != nil {
			return err
		}
	}
	return f.Sync()
}

// guardedStore is the log and stable store as Raft sees it: every failed write is
// reported to the guard.
type guardedStore struct {
	raftStore
	guard *storageGuard
}

func (s guardedStore) report(op string, err error) error {
	if err != nil {
		s.guard.failed(op, err)
	}
	return err
}

// StoreLog implements raft.LogStore.
func (s guardedStore) StoreLog(l *raft.Log) error {
	return s.report("write raft log", s.raftStore.StoreLog(l))
}

// StoreLogs implements raft.LogStore.
func (s guardedStore) StoreLogs(logs []*raft.Log) error {
	return s.report("write raft log", s.raftStore.StoreLogs(logs))
}

// DeleteRange implements raft.LogStore.
func (s guardedStore) DeleteRange(lo, hi uint64) error {
	return s.report("delete raft log range", s.raftStore.DeleteRange(lo, hi))
}

// Set implements raft.StableStore.
func (s guardedStore) Set(k, v []byte) error {
	return s.report("write raft stable store", s.raftStore.Set(k, v))
}

// SetUint64 implements raft.StableStore.
func (s guardedStore) SetUint64(k []byte, v uint64) error {
	return s.report("write raft stable store", s.raftStore.SetUint64(k, v))
}

// campaignGate is the transport as Raft sees it: while the guard holds the
// node's campaign, every vote and pre-vote it asks for is refused here,
// without a message sent. Refused pre-votes never lead to a real election,
// so the node's term does not move and the cluster is not disturbed. It
// embeds the admission transport so that Raft still finds the network
// transport's optional interfaces (pre-vote, close, peers).
type campaignGate struct {
	*admissionTransport
	guard *storageGuard
}

// RequestVote implements raft.Transport.
func (g campaignGate) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if g.guard.campaignHeld() {
		*resp = raft.RequestVoteResponse{RPCHeader: args.RPCHeader, Term: args.Term, Granted: false}
		return nil
	}
	return g.admissionTransport.RequestVote(id, target, args, resp)
}

// RequestPreVote implements raft.WithPreVote.
func (g campaignGate) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if g.guard.campaignHeld() {
		*resp = raft.RequestPreVoteResponse{RPCHeader: args.RPCHeader, Term: args.Term, Granted: false}
		return nil
	}
	return g.admissionTransport.RequestPreVote(id, target, args, resp)
}
