// Package grpcclient opens the gRPC connections GAIA services and tools use
// to call each other, with keepalive settings the servers in
// internal/grpcserver accept and a retry policy that rides out a replica
// restarting or a leader change.
//
// It owns connection settings only; each caller owns its generated client
// stubs and decides what to do with errors that outlast the retries.
package grpcclient
