// Package tlsconfig turns certificate files into the TLS configurations GAIA's
// servers and clients use, and keeps them current: a Source re-reads its files
// when they change (checked at most once a second, on the next handshake), so
// a rotated certificate or CA is used by new connections without a restart.
//
// It owns the TLS_* and CLUSTER_TLS_* variables (Load), the mutual TLS that
// guards the Raft port (MutualServerConfig, MemberClientConfig), gRPC
// transport credentials (Credentials), and the throw-away certificate
// authorities `gaia certs dev`, the single-node coordinator and tests make
// (NewAuthority). It knows no service: callers decide where each
// configuration goes.
package tlsconfig
