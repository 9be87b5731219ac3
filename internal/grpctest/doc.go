// Package grpctest runs a real GAIA gRPC server (internal/grpcserver) on a
// loopback port inside a test and hands back a client connection to it
// (internal/grpcclient), so tests exercise the same interceptors, error
// mapping and retry policy as production. For tests only.
package grpctest
