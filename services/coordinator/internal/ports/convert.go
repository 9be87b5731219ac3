package ports

import (
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

var (
	tierToState = map[coordinatorv1.SessionTier]state.Tier{
		coordinatorv1.SessionTier_SESSION_TIER_HIGH_LEVEL: state.TierHighLevel,
		coordinatorv1.SessionTier_SESSION_TIER_MANAGER:    state.TierManager,
		coordinatorv1.SessionTier_SESSION_TIER_WORKER:     state.TierWorker,
	}
	providerToState = map[coordinatorv1.Provider]state.Provider{
		coordinatorv1.Provider_PROVIDER_CLAUDE: state.ProviderClaude,
		coordinatorv1.Provider_PROVIDER_CODEX:  state.ProviderCodex,
		coordinatorv1.Provider_PROVIDER_OLLAMA: state.ProviderOllama,
		coordinatorv1.Provider_PROVIDER_OPENAI: state.ProviderOpenAI,
		coordinatorv1.Provider_PROVIDER_GEMINI: state.ProviderGemini,
		coordinatorv1.Provider_PROVIDER_OTHER:  state.ProviderOther,
	}
	statusToState = map[coordinatorv1.SessionStatus]state.Status{
		coordinatorv1.SessionStatus_SESSION_STATUS_REGISTERED:   state.StatusRegistered,
		coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE:       state.StatusActive,
		coordinatorv1.SessionStatus_SESSION_STATUS_SUSPECT:      state.StatusSuspect,
		coordinatorv1.SessionStatus_SESSION_STATUS_FAILED:       state.StatusFailed,
		coordinatorv1.SessionStatus_SESSION_STATUS_DEREGISTERED: state.StatusDeregistered,
	}
	eventToState = map[coordinatorv1.SessionEventType]state.EventType{
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_REGISTERED:   state.EventRegistered,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_ACTIVE:       state.EventActive,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_SUSPECT:      state.EventSuspect,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED:       state.EventFailed,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_RECOVERED:    state.EventRecovered,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_DEREGISTERED: state.EventDeregistered,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_SNAPSHOT:     state.EventSnapshot,
	}
)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

var (
	tierToProto      = invert(tierToState)
	providerToProto  = invert(providerToState)
	statusToProto    = invert(statusToState)
	eventTypeToProto = invert(eventToState)
)

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func windowsToProto(ws []state.TimeWindow) []*typev1.TimeWindow {
	out := make([]*typev1.TimeWindow, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.ToProto())
	}
	return out
}

func sessionToProto(s state.Session) *coordinatorv1.Session {
	return &coordinatorv1.Session{
		SessionId:           s.ID,
		Name:                s.Name,
		Tier:                tierToProto[s.Tier],
		Provider:            providerToProto[s.Provider],
		MaxConcurrentTasks:  int32(s.MaxConcurrentTasks),
		TimeWindows:         windowsToProto(s.TimeWindows),
		Labels:              s.Labels,
		Status:              statusToProto[s.Status],
		ConsecutiveFailures: int32(s.ConsecutiveFailures),
		RegisteredAt:        timestamp(s.RegisteredAt),
		LastHeartbeatAt:     timestamp(s.LastHeartbeatAt),
		StatusChangedAt:     timestamp(s.StatusChangedAt),
		RegisteredIndex:     s.RegisteredIndex,
	}
}

func sessionViewToProto(v app.SessionView) *coordinatorv1.Session {
	p := sessionToProto(v.Session)
	p.LastHeartbeatAt = timestamp(v.LastHeartbeatAt)
	p.LeaseExpiresAt = timestamp(v.LeaseExpiresAt)
	p.CurrentTaskCount = v.TaskCount
	p.Activity = v.Activity
	p.Active = v.Active
	p.Healthy = v.Healthy
	p.Available = v.Available
	return p
}

func lockToProto(l app.LockView) *coordinatorv1.Lock {
	if l.Key == "" {
		return nil
	}
	return &coordinatorv1.Lock{
		Key:              l.Key,
		OwnerSessionId:   l.OwnerID,
		OwnerSessionName: l.OwnerName,
		FencingToken:     l.FencingToken,
		AcquiredAt:       timestamp(l.AcquiredAt),
		ExpiresAt:        timestamp(l.ExpiresAt),
		Ttl:              durationpb.New(l.TTL),
		Waiters:          int32(l.Waiters),
	}
}

func eventToProto(e state.Event) *coordinatorv1.SessionEvent {
	return &coordinatorv1.SessionEvent{
		Index:            e.Index,
		Type:             eventTypeToProto[e.Type],
		Session:          sessionToProto(e.Session),
		OccurredAt:       timestamp(e.At),
		ReleasedLockKeys: e.ReleasedLocks,
	}
}

func nodeStateToProto(s string) coordinatorv1.NodeState {
	if v, ok := coordinatorv1.NodeState_value["NODE_STATE_"+strings.ToUpper(s)]; ok {
		return coordinatorv1.NodeState(v)
	}
	return coordinatorv1.NodeState_NODE_STATE_UNSPECIFIED
}

func suffrageToProto(s raft.ServerSuffrage) coordinatorv1.NodeSuffrage {
	switch s {
	case raft.Voter:
		return coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER
	case raft.Nonvoter:
		return coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_NONVOTER
	case raft.Staging:
		return coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_STAGING
	}
	return coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_UNSPECIFIED
}
