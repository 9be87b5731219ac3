// Package raftnode runs the coordinator's Raft node: hashicorp/raft over a TCP
// transport, raft-wal for the log and stable store (logstore.go), a file snapshot store,
// all under one data folder. It owns start-up, bootstrap and shutdown of the node;
// what the replicated state means belongs to the FSM it is given.
package raftnode
