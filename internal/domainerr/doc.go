// Package domainerr owns GAIA's vocabulary of domain error kinds and their
// one mapping onto gRPC status codes (Kind.Code).
//
// Domains declare their sentinel errors with New (for example
// ErrTaskNotFound) and wrap them freely with fmt.Errorf and %w; errors.Is
// still finds them because a sentinel is compared by identity. Two
// constructors carry more than a kind and a message: Invalid names the
// request field that is wrong (bad input is always INVALID_ARGUMENT naming
// the field), and NotLeader names the leader's address for a node that
// cannot serve a request itself.
//
// The transport layer turns an *Error into what the client sees, in one
// place: internal/grpcserver's ToStatus gives it its kind's code and its
// message, plus a google.rpc.BadRequest detail naming Field, or for NotLeader
// a google.rpc.ErrorInfo detail and the grpcclient.LeaderTrailer trailer with
// the leader's address. No service maps errors to codes by itself.
//
// This package imports no transport beyond grpc/codes and knows nothing of
// status details, metadata or logging.
package domainerr
