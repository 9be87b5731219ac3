package grpcserver

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// How a follower tells a client where the leader is, besides the message:
// the trailer grpcclient.LeaderTrailer for clients that read metadata, and a
// google.rpc.ErrorInfo detail (Reason ReasonNotLeader, Domain ErrorDomain,
// Metadata["leader"]) for clients that read details.
const (
	ErrorDomain     = "gaia"
	ReasonNotLeader = "NOT_LEADER"
)

// internalMessage is all a client learns about an unexpected error.
const internalMessage = "internal error"

// ToStatus turns err into the error a gRPC handler should return. It is the
// one mapping every GAIA server uses:
//
//   - an error carrying a gRPC status (also wrapped) keeps that status;
//   - a domainerr.Error gets its kind's code and its own message, plus a
//     google.rpc.BadRequest detail naming the field for InvalidArgument and
//     a google.rpc.ErrorInfo detail with the leader's address for NotLeader;
//   - context.Canceled and context.DeadlineExceeded (also wrapped) become
//     Canceled and DeadlineExceeded with the context's own message;
//   - anything else becomes INTERNAL "internal error". The caller must log
//     err, since the client will not see it; the server's interceptors do.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	st, _ := toStatus(err)
	return st.Err()
}

// toStatus is ToStatus that also says whether err was unexpected, so the
// interceptors know to log it.
func toStatus(err error) (st *status.Status, unexpected bool) {
	if se, ok := errors.AsType[statusError](err); ok && se.GRPCStatus() != nil {
		return se.GRPCStatus(), false
	}
	if de, ok := errors.AsType[*domainerr.Error](err); ok && de.Kind.Valid() {
		return domainStatus(de), false
	}
	// The bare context message: the wrapping may describe internals.
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, context.Canceled.Error()), false
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, context.DeadlineExceeded.Error()), false
	}
	return status.New(codes.Internal, internalMessage), true
}

func domainStatus(de *domainerr.Error) *status.Status {
	st := status.New(de.Kind.Code(), de.Error())
	var detail *status.Status
	var err error
	switch {
	case de.Kind == domainerr.InvalidArgument && de.Field != "":
		detail, err = st.WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: de.Field, Description: de.Msg}},
		})
	case de.Kind == domainerr.Unavailable && de.Leader != "":
		detail, err = st.WithDetails(&errdetails.ErrorInfo{
			Reason:   ReasonNotLeader,
			Domain:   ErrorDomain,
			Metadata: map[string]string{"leader": de.Leader},
		})
	default:
		return st
	}
	if err != nil {
		// Details only help; the code and message still say it all.
		return st
	}
	return detail
}

// statusError is an error carrying a gRPC status, as status.Error returns.
type statusError interface {
	error
	GRPCStatus() *status.Status
}

// leaderOf returns the leader address a NotLeader error carries, if any.
func leaderOf(err error) string {
	if de, ok := errors.AsType[*domainerr.Error](err); ok && de.Kind == domainerr.Unavailable {
		return de.Leader
	}
	return ""
}

// unexpectedError is what the error-mapping interceptor returns for an
// error the client may not see: gRPC sends only its status, while the
// logging interceptor, further out, can still log the cause.
type unexpectedError struct {
	st    *status.Status
	cause error
}

func (e *unexpectedError) GRPCStatus() *status.Status { return e.st }
func (e *unexpectedError) Error() string              { return e.st.Err().Error() }
