package raftnode

import (
	"errors"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// ErrPartitioned is what a blocked peer's RPCs fail with.
var ErrPartitioned = errors.New("network partitioned (test transport)")

// Partitionable wraps a Raft transport so that tests can cut a node off from
// some or all of its peers: outgoing RPCs to a blocked address fail at once,
// as they would when the network drops them. Block both sides for a clean
// partition. It exists for the partition tests; production never wraps.
type Partitionable struct {
	raft.Transport

	mu       sync.RWMutex
	blocked  map[raft.ServerAddress]bool
	isolated bool
}

// NewPartitionable wraps t.
func NewPartitionable(t raft.Transport) *Partitionable {
	return &Partitionable{Transport: t, blocked: map[raft.ServerAddress]bool{}}
}

// Block drops every RPC to addr until Heal.
func (p *Partitionable) Block(addr raft.ServerAddress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[addr] = true
}

// Isolate drops every outgoing RPC until Heal.
func (p *Partitionable) Isolate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isolated = true
}

// Heal lets every RPC through again.
func (p *Partitionable) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isolated = false
	p.blocked = map[raft.ServerAddress]bool{}
}

func (p *Partitionable) cut(target raft.ServerAddress) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.isolated || p.blocked[target]
}

// AppendEntriesPipeline implements raft.Transport.
func (p *Partitionable) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if p.cut(target) {
		return nil, ErrPartitioned
	}
	pl, err := p.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return &partitionedPipeline{AppendPipeline: pl, p: p, target: target}, nil
}

// AppendEntries implements raft.Transport.
func (p *Partitionable) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if p.cut(target) {
		return ErrPartitioned
	}
	return p.Transport.AppendEntries(id, target, args, resp)
}

// RequestVote implements raft.Transport.
func (p *Partitionable) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if p.cut(target) {
		return ErrPartitioned
	}
	return p.Transport.RequestVote(id, target, args, resp)
}

// InstallSnapshot implements raft.Transport.
func (p *Partitionable) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if p.cut(target) {
		return ErrPartitioned
	}
	return p.Transport.InstallSnapshot(id, target, args, resp, data)
}

// TimeoutNow implements raft.Transport.
func (p *Partitionable) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	if p.cut(target) {
		return ErrPartitioned
	}
	return p.Transport.TimeoutNow(id, target, args, resp)
}

type partitionedPipeline struct {
	raft.AppendPipeline
	p      *Partitionable
	target raft.ServerAddress
}

func (pl *partitionedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if pl.p.cut(pl.target) {
		return nil, ErrPartitioned
	}
	return pl.AppendPipeline.AppendEntries(args, resp)
}

// RequestPreVote implements raft.WithPreVote, so that a wrapped node runs
// pre-vote elections as production nodes do.
func (p *Partitionable) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if p.cut(target) {
		return ErrPartitioned
	}
	pv, ok := p.Transport.(raft.WithPreVote)
	if !ok {
		return errors.New("wrapped transport does not support pre-vote")
	}
	return pv.RequestPreVote(id, target, args, resp)
}
