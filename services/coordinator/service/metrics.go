package service

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// Prometheus metrics at COORDINATOR_PROMETHEUS_LISTEN_ADDR. Everything but the
// heartbeat and forwarding counters is read from Raft and the state store at
// scrape time, so the metrics cost nothing between scrapes.

var (
	descLeader        = prometheus.NewDesc("gaia_coordinator_leader", "1 when this node is the Raft leader.", nil, nil)
	descHasLeader     = prometheus.NewDesc("gaia_coordinator_has_leader", "1 when this node knows a leader.", nil, nil)
	descReady         = prometheus.NewDesc("gaia_coordinator_ready", "1 when this node is ready (a voter with a leader, caught up).", nil, nil)
	descTerm          = prometheus.NewDesc("gaia_coordinator_raft_term", "Current Raft term.", nil, nil)
	descCommitIndex   = prometheus.NewDesc("gaia_coordinator_raft_commit_index", "Highest Raft index known committed.", nil, nil)
	descAppliedIndex  = prometheus.NewDesc("gaia_coordinator_raft_applied_index", "Highest Raft index applied to the state machine.", nil, nil)
	descLastIndex     = prometheus.NewDesc("gaia_coordinator_raft_last_log_index", "Last index in the Raft log.", nil, nil)
	descVoters        = prometheus.NewDesc("gaia_coordinator_raft_voters", "Voters in the Raft configuration.", nil, nil)
	descSessions      = prometheus.NewDesc("gaia_coordinator_sessions", "Sessions in this node's state, by state.", []string{"state"}, nil)
	descLocks         = prometheus.NewDesc("gaia_coordinator_locks", "Locks held, in this node's state.", nil, nil)
	descHeartbeats    = prometheus.NewDesc("gaia_coordinator_heartbeats_total", "Heartbeats received by this node (rate() gives heartbeats/s).", nil, nil)
	descForwarded     = prometheus.NewDesc("gaia_coordinator_forwarded_calls_total", "Calls this node passed on to the leader.", nil, nil)
	descDeadRemovedOK = prometheus.NewDesc("gaia_coordinator_dead_servers_removed_total", "Voters this node removed as gone for good.", nil, nil)
	descStorageOK     = prometheus.NewDesc("gaia_coordinator_storage_writable", "1 while this node can write its Raft log and stable store; 0 (a full disk, an I/O error, a read-only file system) while it cannot: it then stands for no election and gives up leadership.", nil, nil)
	descStorageFailed = prometheus.NewDesc("gaia_coordinator_storage_failures_total", "Times this node found its Raft storage unwritable.", nil, nil)
)

// collector reads the node for Prometheus.
type collector struct {
	s           *Service
	store       *state.Store
	heartbeats  atomic.Uint64
	deadRemoved atomic.Uint64
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descHasLeader, descReady, descTerm, descCommitIndex, descAppliedIndex, descLastIndex, descVoters, descSessions, descLocks, descHeartbeats, descForwarded, descDeadRemovedOK, descStorageOK, descStorageFailed} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.s.node.Raft
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	_, leader := r.LeaderWithID()
	ready, _ := c.s.Ready()
	gauge(descLeader, b2f(r.State() == raft.Leader))
	gauge(descHasLeader, b2f(leader != ""))
	gauge(descReady, b2f(ready))
	gauge(descTerm, float64(r.CurrentTerm()))
	gauge(descCommitIndex, float64(r.CommitIndex()))
	gauge(descAppliedIndex, float64(r.AppliedIndex()))
	gauge(descLastIndex, float64(r.LastIndex()))
	voters := 0
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if srv.Suffrage == raft.Voter {
				voters++
			}
		}
	}
	gauge(descVoters, float64(voters))
	byState := map[state.Status]int{state.StatusRegistered: 0, state.StatusActive: 0, state.StatusSuspect: 0}
	for _, x := range c.store.Sessions() {
		byState[x.Status]++
	}
	for st, n := range byState {
		gauge(descSessions, float64(n), string(st))
	}
	_, locks := c.store.Counts()
	gauge(descLocks, float64(locks))
	ch <- prometheus.MustNewConstMetric(descHeartbeats, prometheus.CounterValue, float64(c.heartbeats.Load()))
	ch <- prometheus.MustNewConstMetric(descForwarded, prometheus.CounterValue, float64(c.s.forward.Forwarded()))
	ch <- prometheus.MustNewConstMetric(descDeadRemovedOK, prometheus.CounterValue, float64(c.deadRemoved.Load()))
	storage := c.s.node.Storage()
	gauge(descStorageOK, b2f(storage.Err == nil))
	ch <- prometheus.MustNewConstMetric(descStorageFailed, prometheus.CounterValue, float64(storage.Failures))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// countHeartbeats counts every message received on a Heartbeat stream.
func (c *collector) countHeartbeats(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasSuffix(info.FullMethod, "/Heartbeat") {
		return handler(srv, ss)
	}
	return handler(srv, &countingStream{ServerStream: ss, n: &c.heartbeats})
}

type countingStream struct {
	grpc.ServerStream
	n *atomic.Uint64
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

// Context is the wrapped stream's.
func (s *countingStream) Context() context.Context { return s.ServerStream.Context() }
