package coordtest

import (
	"errors"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// errPartitioned is what a blocked peer's RPCs fail with.
var errPartitioned = errors.New("network partitioned (test transport)")

// partitionTransport wraps a Raft transport so that tests can cut a node off from
// some or all of its peers: outgoing RPCs to a blocked address fail at once,
// as they would when the network drops them. Block both sides for a clean
// partition. It lives here, in the test-support package, because only tests
// wrap a transport (through service.Options.WrapTransport).
type partitionTransport struct {
	raft.Transport

	mu       sync.RWMutex
	blocked  map[raft.ServerAddress]bool
	isolated bool
}

// newPartitionTransport wraps t.
func newPartitionTransport(t raft.Transport) *partitionTransport {
	return &partitionTransport{Transport: t, blocked: map[raft.ServerAddress]bool{}}
}

// Block drops every RPC to addr until Heal.
func (p *partitionTransport) Block(addr raft.ServerAddress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[addr] = true
}

// Isolate drops every outgoing RPC until Heal.
func (p *partitionTransport) Isolate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isolated = true
}

// Heal lets every RPC through again.
func (p *partitionTransport) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isolated = false
	p.blocked = map[raft.ServerAddress]bool{}
}

func (p *partitionTransport) cut(target raft.ServerAddress) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.isolated || p.blocked[target]
}

// AppendEntriesPipeline implements raft.Transport.
func (p *partitionTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if p.cut(target) {
		return nil, errPartitioned
	}
	pl, err := p.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return &partitionedPipeline{AppendPipeline: pl, p: p, target: target}, nil
}

// AppendEntries implements raft.Transport.
func (p *partitionTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if p.cut(target) {
		return errPartitioned
	}
	return p.Transport.AppendEntries(id, target, args, resp)
}

// RequestVote implements raft.Transport.
func (p *partitionTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if p.cut(target) {
		return errPartitioned
	}
	return p.Transport.RequestVote(id, target, args, resp)
}

// InstallSnapshot implements raft.Transport.
func (p *partitionTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if p.cut(target) {
		return errPartitioned
	}
	return p.Transport.InstallSnapshot(id, target, args, resp, data)
}

// TimeoutNow implements raft.Transport.
func (p *partitionTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	if p.cut(target) {
		return errPartitioned
	}
	return p.Transport.TimeoutNow(id, target, args, resp)
}

type partitionedPipeline struct {
	raft.AppendPipeline
	p      *partitionTransport
	target raft.ServerAddress
}

func (pl *partitionedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if pl.p.cut(pl.target) {
		return nil, errPartitioned
	}
	return pl.AppendPipeline.AppendEntries(args, resp)
}

// RequestPreVote implements raft.WithPreVote, so that a wrapped node runs
// pre-vote elections as production nodes do.
func (p *partitionTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if p.cut(target) {
		return errPartitioned
	}
	pv, ok := p.Transport.(raft.WithPreVote)
	if !ok {
		return errors.New("wrapped transport does not support pre-vote")
	}
	return pv.RequestPreVote(id, target, args, resp)
}
