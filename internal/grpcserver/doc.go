// Package grpcserver builds the gRPC server every GAIA service runs, so that
// all of them recover from panics, log each RPC, map errors to status codes,
// report health and drain on shutdown the same way.
//
// It owns the single translation from Go errors to gRPC statuses (ToStatus):
// domain errors from internal/domainerr keep their code and message, context
// errors become Canceled or DeadlineExceeded, and anything else becomes
// INTERNAL "internal error" with the real error only in the log.
//
// It registers gRPC health and server reflection itself. It knows no GAIA
// service: services register their implementations on GRPC() before Serve.
package grpcserver
