// Package etcdbench sets GAIA's coordinator beside etcd in the same run: a
// three-member etcd cluster started in process with go.etcd.io/etcd's embed
// package, and a three-node GAIA coordinator cluster (coordtest), driven by
// the same load generator with the same clients, connections and disk. See
// bench_test.go and docs/BENCHMARKS.md.
//
// This is a module of its own (bench/etcd/go.mod) so that etcd never enters
// GAIA's go.mod; GAIA's `go test ./...` and `go vet ./...` do not descend
// into it. It builds the coordinator from the working tree (a replace
// directive), so a change to the coordinator is measured here at once.
package etcdbench
