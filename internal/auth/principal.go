package auth

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Role is what a principal may do. The policy table names, for every RPC,
// the roles allowed to call it.
type Role string

// The roles (docs/SECURITY.md).
const (
	// RoleAdmin changes cluster membership, issues and revokes credentials,
	// and may call everything.
	RoleAdmin Role = "admin"
	// RoleOperator runs tasks, lessons and affinities, optionally only those
	// of the projects its credential names.
	RoleOperator Role = "operator"
	// RoleSession is an agent session. It carries no bearer credential: it
	// proves itself with the session id and token in the request (its join
	// secret to register), which the serving handler checks as before.
	RoleSession Role = "session"
	// RoleApp is an education app posting for its app id and, when the
	// credential lists them, only for those classrooms.
	RoleApp Role = "app"
	// RoleTeacher sees and acts on the classrooms assigned to the teacher.
	RoleTeacher Role = "teacher"
	// RoleService is a GAIA service calling another one.
	RoleService Role = "service"
)

// Roles lists every role, in the order documentation shows them.
var Roles = []Role{RoleAdmin, RoleOperator, RoleSession, RoleApp, RoleTeacher, RoleService}

// IssuableRoles are the roles a credential can be issued for; a session gets
// its token from RegisterSession instead.
var IssuableRoles = []Role{RoleAdmin, RoleOperator, RoleApp, RoleTeacher, RoleService}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("unknown role %q (one of admin, operator, app, teacher, service)", s)
	}
	return r, nil
}

// Principal is an authenticated caller.
type Principal struct {
	Role Role
	// CredentialID is the credential's id (its JWT "jti"); empty for a
	// session, which has no bearer credential.
	CredentialID string
	// Name is the credential's label ("demo-teacher").
	Name string
	// KeyID is the id of the key that signed the credential.
	KeyID string
	// TeacherID is set for RoleTeacher.
	TeacherID string
	// AppID is set for RoleApp.
	AppID string
	// Classrooms limits an app to these classrooms; empty means any of the
	// app's classrooms.
	Classrooms []string
	// Projects limits an operator to these projects; empty means all.
	Projects []string
	// Service names the calling service for RoleService.
	Service string
	// IssuedAt and ExpiresAt bound the credential's validity.
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Who is the principal as audit lines and error messages name it.
func (p Principal) Who() string {
	switch {
	case p.Role == RoleSession:
		return "session"
	case p.Name != "":
		return string(p.Role) + ":" + p.Name
	case p.TeacherID != "":
		return string(p.Role) + ":" + p.TeacherID
	case p.AppID != "":
		return string(p.Role) + ":" + p.AppID
	case p.Service != "":
		return string(p.Role) + ":" + p.Service
	default:
		return string(p.Role) + ":" + p.CredentialID
	}
}

type principalKey struct{}

type principalValue struct {
	p        Principal
	resolver ClassroomResolver
}

// NewContext returns ctx carrying p; the interceptor does this for every
// call, and tests of handlers may do it by hand.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, principalValue{p: p})
}

func newContext(ctx context.Context, p Principal, r ClassroomResolver) context.Context {
	return context.WithValue(ctx, principalKey{}, principalValue{p: p, resolver: r})
}

// FromContext returns the caller of the RPC being served. ok is false when
// no interceptor authenticated the call (a server built without auth).
func FromContext(ctx context.Context) (p Principal, ok bool) {
	v, ok := ctx.Value(principalKey{}).(principalValue)
	return v.p, ok
}

func resolverFrom(ctx context.Context) ClassroomResolver {
	v, _ := ctx.Value(principalKey{}).(principalValue)
	return v.resolver
}
