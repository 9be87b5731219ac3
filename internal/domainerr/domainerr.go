package domainerr

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
)

// Kind classifies a domain error by what the caller can do about it. The
// kinds mirror gRPC codes one to one so the mapping stays obvious; the zero
// Kind means "not a domain error".
type Kind int

// The kinds of domain error, each answered with the gRPC code of the same
// name.
const (
	InvalidArgument Kind = iota + 1
	NotFound
	AlreadyExists
	FailedPrecondition
	PermissionDenied
	Unauthenticated
	Unavailable
	Aborted
	DeadlineExceeded
	ResourceExhausted
	Unimplemented
)

var kindCodes = map[Kind]codes.Code{
	InvalidArgument:    codes.InvalidArgument,
	NotFound:           codes.NotFound,
	AlreadyExists:      codes.AlreadyExists,
	FailedPrecondition: codes.FailedPrecondition,
	PermissionDenied:   codes.PermissionDenied,
	Unauthenticated:    codes.Unauthenticated,
	Unavailable:        codes.Unavailable,
	Aborted:            codes.Aborted,
	DeadlineExceeded:   codes.DeadlineExceeded,
	ResourceExhausted:  codes.ResourceExhausted,
	Unimplemented:      codes.Unimplemented,
}

// Code is the gRPC code a client receives for an error of this kind.
// Anything that is not one of the declared kinds is a programming error and
// answers codes.Internal, so it is never mistaken for a client mistake.
func (k Kind) Code() codes.Code {
	if c, ok := kindCodes[k]; ok {
		return c
	}
	return codes.Internal
}

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool {
	_, ok := kindCodes[k]
	return ok
}

func (k Kind) String() string {
	if c, ok := kindCodes[k]; ok {
		return c.String()
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a failure the domain expects and can explain to a client.
type Error struct {
	Kind Kind
	// Field names the offending request field of an InvalidArgument error, in
	// the request's own spelling (for example "task.queue"), so clients can
	// point at it.
	Field string
	Msg   string
	// Leader is the address of the current leader for an Unavailable error
	// raised by a follower, so the client can go there instead.
	Leader string
}

// New returns a domain error. Declare sentinels with it at package level:
//
//	var ErrTaskNotFound = domainerr.New(domainerr.NotFound, "task not found")
func New(kind Kind, msg string) *Error {
	return &Error{Kind: kind, Msg: msg}
}

// Invalid reports a bad request field; reason says what is wrong with it.
func Invalid(field, reason string) *Error {
	return &Error{Kind: InvalidArgument, Field: field, Msg: reason}
}

// NotLeader reports that this node cannot serve the request because it is
// not the leader. leaderAddr is empty while no leader is known.
func NotLeader(leaderAddr string) *Error {
	if leaderAddr == "" {
		return &Error{Kind: Unavailable, Msg: "no leader elected yet"}
	}
	return &Error{Kind: Unavailable, Msg: "not the leader; leader is at " + leaderAddr, Leader: leaderAddr}
}

func (e *Error) Error() string {
	if e.Kind == InvalidArgument && e.Field != "" {
		return "invalid " + e.Field + ": " + e.Msg
	}
	return e.Msg
}

// KindOf returns the kind of the first domain error in err's chain, or 0 if
// there is none.
func KindOf(err error) Kind {
	if de, ok := errors.AsType[*Error](err); ok {
		return de.Kind
	}
	return 0
}
