package raftnode

import (
	"errors"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// Admission: a node that starts with no Raft state cannot tell, by itself,
// whether it is new or a member that lost its disk. A member that lost its
// disk has forgotten the entries it acknowledged and the votes it granted,
// and Raft's safety rests on both: answering as the old voter, it could
// elect a leader that lacks committed entries, or vote twice in one term.
// So such a node answers no Raft RPC (no vote, no append, no snapshot) until
// its owner has settled what it is — formed a new cluster, or found that the
// cluster's configuration lacks it (it is new, or its old identity has been
// removed) — and admits it. To the cluster it looks down until then.
//
// Admission also sets a vote floor: the cluster's term when the node was let
// in. The node grants no vote for that term or an earlier one, in which it
// may have voted before it lost its disk.

// errNotAdmitted is what a node answers every Raft RPC with before it is
// admitted.
var errNotAdmitted = errors.New("node has no raft state and is not admitted to the cluster yet")

// errVoteFloor refuses a vote for a term at or below the vote floor.
var errVoteFloor = errors.New("no vote for a term at or before this node was admitted")

// admissionTransport wraps the network transport and holds back incoming RPCs
// until Admit. It embeds the concrete transport so that raft still sees its
// optional interfaces (pre-vote, close, peers).
type admissionTransport struct {
	*raft.NetworkTransport

	mu        sync.Mutex
	admitted  bool
	voteFloor uint64
	heartbeat func(raft.RPC)
	// passthrough: admitted from the start, so Consumer and
	// SetHeartbeatHandler are the network transport's own.
	passthrough bool

	consumer chan raft.RPC
	done     chan struct{}
	stop     sync.Once
}

func newAdmissionTransport(t *raft.NetworkTransport, admitted bool) *admissionTransport {
	a := &admissionTransport{NetworkTransport: t, admitted: admitted, done: make(chan struct{})}
	if admitted {
		// Nothing to hold back, ever: raft talks to the transport itself,
		// with no extra hop for each RPC.
		a.passthrough = true
		return a
	}
	a.consumer = make(chan raft.RPC)
	go a.relay()
	t.SetHeartbeatHandler(a.onHeartbeat)
	return a
}

// Admit lets the node take part in Raft, voting only for terms after floor.
func (a *admissionTransport) Admit(floor uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admitted = true
	a.voteFloor = max(a.voteFloor, floor)
}

// Admitted reports whether Admit was called (or the node had state).
func (a *admissionTransport) Admitted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.admitted
}

// refusal is the error to answer rpc with, or nil to let it through.
func (a *admissionTransport) refusal(rpc raft.RPC) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.admitted {
		return errNotAdmitted
	}
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		if req.Term <= a.voteFloor {
			return errVoteFloor
		}
	case *raft.RequestPreVoteRequest:
		if req.Term <= a.voteFloor {
			return errVoteFloor
		}
	}
	return nil
}

func (a *admissionTransport) refuse(rpc raft.RPC, err error) {
	if rpc.Reader != nil {
		// A snapshot's bytes follow the request on the connection.
		_, _ = io.Copy(io.Discard, rpc.Reader)
	}
	rpc.Respond(nil, err)
}

func (a *admissionTransport) relay() {
	in := a.NetworkTransport.Consumer()
	for {
		select {
		case <-a.done:
			return
		case rpc := <-in:
			if err := a.refusal(rpc); err != nil {
				a.refuse(rpc, err)
				continue
			}
			select {
			case a.consumer <- rpc:
			case <-a.done:
				rpc.Respond(nil, raft.ErrTransportShutdown)
				return
			}
		}
	}
}

func (a *admissionTransport) onHeartbeat(rpc raft.RPC) {
	if err := a.refusal(rpc); err != nil {
		a.refuse(rpc, err)
		return
	}
	a.mu.Lock()
	fn := a.heartbeat
	a.mu.Unlock()
	if fn == nil {
		// As the network transport does without a handler: the consumer.
		select {
		case a.consumer <- rpc:
		case <-a.done:
			rpc.Respond(nil, raft.ErrTransportShutdown)
		}
		return
	}
	fn(rpc)
}

// Consumer implements raft.Transport.
func (a *admissionTransport) Consumer() <-chan raft.RPC {
	if a.passthrough {
		return a.NetworkTransport.Consumer()
	}
	return a.consumer
}

// SetHeartbeatHandler implements raft.Transport.
func (a *admissionTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	if a.passthrough {
		a.NetworkTransport.SetHeartbeatHandler(cb)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.heartbeat = cb
}

// Close implements raft.WithClose.
func (a *admissionTransport) Close() error {
	a.stop.Do(func() { close(a.done) })
	return a.NetworkTransport.Close()
}
