package service

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// ReadinessService is the gRPC health service name whose status is this
// node's readiness: SERVING only while it is a voter with a leader, can
// write its Raft storage and has applied everything the leader told it is
// committed. Kubernetes' readiness
// probe asks for it (grpc.service: readiness); liveness asks for "" (the
// process serves gRPC at all), so a node cut off from its peers is taken out
// of the Service but not restarted.
const ReadinessService = "readiness"

// LivenessService is SERVING from start to shutdown: the process is up and
// answering gRPC. Kubernetes' liveness probe asks for it rather than for ""
// so that whatever "" comes to mean for the server as a whole, a node
// without a quorum is never restarted for it (a restart would not bring
// the quorum back).
const LivenessService = "liveness"

// maxApplyLag is how many committed entries a ready follower may still have
// to apply: a busy leader commits continuously, so "equal" would flicker.
const maxApplyLag = 64

// Ready reports whether the node is ready and, when not, why.
func (s *Service) Ready() (bool, string) {
	r := s.node.Raft
	_, leader := r.LeaderWithID()
	switch {
	case leader == "":
		return false, "no leader"
	case !s.inConfiguration():
		return false, "not in the cluster configuration"
	case s.node.Storage().Err != nil:
		// It cannot take a write as leader, nor append the leader's
		// entries as follower.
		return false, "cannot write its raft storage"
	case r.State() == raft.Leader:
		return true, "leader"
	case time.Since(r.LastContact()) > 2*s.cfg.Raft.HeartbeatTimeout+time.Second:
		return false, "no recent contact with the leader"
	case r.AppliedIndex()+maxApplyLag < r.CommitIndex():
		return false, "catching up with the leader"
	}
	return true, "following"
}

// watchReadiness keeps the readiness health status current until ctx ends.
func (s *Service) watchReadiness(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	s.grpc.Health().SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if ok, _ := s.Ready(); ok {
			st = healthpb.HealthCheckResponse_SERVING
		}
		if st != last {
			s.grpc.Health().SetServingStatus(ReadinessService, st)
			last = st
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
