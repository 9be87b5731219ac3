// Package state is the coordinator's replicated state: sessions, locks, the
// nodes' gRPC addresses and the recent session events. The FSM is its only
// writer, one committed command at a time, with the leader's time inside each
// command; everything else reads it. It never reads the local clock and knows
// nothing of Raft or gRPC, so the same commands give the same state on every node.
package state
