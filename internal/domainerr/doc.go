// Package domainerr owns GAIA's vocabulary of domain error kinds and their
// one mapping onto gRPC status codes.
//
// Domains declare their sentinel errors with New (for example
// ErrTaskNotFound) and wrap them freely with fmt.Errorf and %w; errors.Is
// still finds them because a sentinel is compared by identity. The transport
// layer (internal/grpcserver) asks KindOf and Kind.Code how to answer a
// client, so no service maps errors to codes by itself.
//
// This package may not import any transport beyond grpc/codes, and knows
// nothing of status details, metadata or logging.
package domainerr
