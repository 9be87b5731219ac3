package main

import (
	"fmt"
	"strings"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/openapigen"
)

// policy derives an operation's security from internal/auth's policy table,
// the one every service enforces, so that the document cannot drift from
// enforcement: an RPC missing from the table fails generation.
func policy(fullMethod string) (openapigen.Security, error) {
	p, ok := auth.Lookup(fullMethod)
	if !ok {
		return openapigen.Security{}, fmt.Errorf("%s has no entry in internal/auth's policy table", fullMethod)
	}
	if p.Public {
		return openapigen.Security{Public: true, Note: "**Authorization:** none; anyone may call it."}, nil
	}
	sec := openapigen.Security{}
	var bearerRoles []string
	for _, r := range p.Roles {
		if r == auth.RoleSession {
			sec.SessionToken = true
			continue
		}
		bearerRoles = append(bearerRoles, string(r))
	}
	sec.Roles = bearerRoles
	var note strings.Builder
	note.WriteString("**Authorization:** a bearer credential of role " + strings.Join(quoteAll(bearerRoles), ", "))
	if sec.SessionToken {
		note.WriteString(", or no credential at all for an agent session, which proves itself with its `session_id` and " +
			"`session_token` in the request (RegisterSession: the cluster's `join_secret`)")
	}
	note.WriteString(".")
	if p.Scope == auth.ScopeRequest {
		note.WriteString(" The request's `app_id`, `classroom_id(s)`, `teacher_id` and `project` must lie inside the credential's scope " +
			"(its app and classrooms, the teacher's assigned classrooms, the operator's projects); PERMISSION_DENIED otherwise.")
	}
	if p.Handler != "" {
		note.WriteString(" Also checked: " + p.Handler + ".")
	}
	if p.Audit {
		note.WriteString(" Every call is audit-logged with its caller.")
	}
	sec.Note = note.String()
	return sec, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return out
}
