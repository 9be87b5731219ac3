// Package config reads a process's configuration from environment variables
// once, at start, into typed values, and reports every bad variable at once.
//
// A service describes its variables by calling Loader accessors, each with a
// default, then checks Err before doing anything else:
//
//	l := config.NewLoader(os.LookupEnv)
//	cfg := Config{
//		BindAddr: l.ListenAddr("CLUSTER_BIND_ADDR", "0.0.0.0:8300"),
//		Peers:    l.DialAddrList("CLUSTER_PEERS", nil),
//	}
//	if err := l.Err(); err != nil { ... }
//
// Vars lists every variable asked for, for --print-config and docs. The
// package owns only parsing and validation; what the values mean belongs to
// the service that asks for them.
package config
