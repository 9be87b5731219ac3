// Package auth is GAIA's identity layer: who is calling (principals and their
// roles), how a caller proves it (Ed25519-signed credentials with key ids,
// checked offline against the public keys and a replicated revocation list),
// and what each role may call (the policy table, one entry per RPC).
//
// The gRPC interceptor in internal/grpcserver applies the table to every
// service; handlers that must check a scope the table cannot see (an alert's
// classroom, a lesson's project) use FromContext and the Require helpers:
//
//	p, _ := auth.FromContext(ctx)            // role, app, classrooms, teacher, projects
//	if err := auth.RequireApp(ctx, ev.AppId, ev.ClassroomId); err != nil { … }
//	if err := auth.RequireClassroom(ctx, alert.ClassroomID); err != nil { … }
//
// The package issues and verifies credentials and keeps revocations in
// memory; it does not store credentials (the coordinator's Raft state does)
// and it knows no service's business rules.
package auth
