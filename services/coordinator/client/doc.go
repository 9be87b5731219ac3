// Package client is how GAIA's Go code talks to the coordinator: one gRPC
// connection spread over every coordinator node, unary calls retried while the
// cluster has no leader, a session-event watch that resumes where it broke off,
// and a heartbeater that keeps one session's lease alive across leader changes
// and reconnects.
//
// It owns the client side of gaia.coordinator.v1 only. It keeps no session,
// lock or cluster state of its own beyond what a stream needs to resume, makes
// no decision on the server's behalf (a follower forwards to the leader, so any
// node will do) and may not import the coordinator's internal packages.
package client
