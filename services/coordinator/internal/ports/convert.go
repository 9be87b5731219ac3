package ports

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
)

var (
	tierToState = map[coordinatorv1.SessionTier]app.Tier{
		coordinatorv1.SessionTier_SESSION_TIER_HIGH_LEVEL: app.TierHighLevel,
		coordinatorv1.SessionTier_SESSION_TIER_MANAGER:    app.TierManager,
		coordinatorv1.SessionTier_SESSION_TIER_WORKER:     app.TierWorker,
	}
	providerToState = map[coordinatorv1.Provider]app.Provider{
		coordinatorv1.Provider_PROVIDER_CLAUDE: app.ProviderClaude,
		coordinatorv1.Provider_PROVIDER_CODEX:  app.ProviderCodex,
		coordinatorv1.Provider_PROVIDER_OLLAMA: app.ProviderOllama,
		coordinatorv1.Provider_PROVIDER_OPENAI: app.ProviderOpenAI,
		coordinatorv1.Provider_PROVIDER_GEMINI: app.ProviderGemini,
		coordinatorv1.Provider_PROVIDER_OTHER:  app.ProviderOther,
	}
	statusToState = map[coordinatorv1.SessionStatus]app.Status{
		coordinatorv1.SessionStatus_SESSION_STATUS_REGISTERED:   app.StatusRegistered,
		coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE:       app.StatusActive,
		coordinatorv1.SessionStatus_SESSION_STATUS_SUSPECT:      app.StatusSuspect,
		coordinatorv1.SessionStatus_SESSION_STATUS_FAILED:       app.StatusFailed,
		coordinatorv1.SessionStatus_SESSION_STATUS_DEREGISTERED: app.StatusDeregistered,
	}
	eventToState = map[coordinatorv1.SessionEventType]app.EventType{
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_REGISTERED:   app.EventRegistered,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_ACTIVE:       app.EventActive,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_SUSPECT:      app.EventSuspect,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED:       app.EventFailed,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_RECOVERED:    app.EventRecovered,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_DEREGISTERED: app.EventDeregistered,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_SNAPSHOT:     app.EventSnapshot,
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

func windowsToProto(ws []app.TimeWindow) []*typev1.TimeWindow {
	out := make([]*typev1.TimeWindow, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.ToProto())
	}
	return out
}

func sessionToProto(s app.Session) *coordinatorv1.Session {
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

func eventToProto(e app.SessionEvent) *coordinatorv1.SessionEvent {
	return &coordinatorv1.SessionEvent{
		Index:             e.Index,
		Type:              eventTypeToProto[e.Type],
		Session:           sessionToProto(e.Session),
		OccurredAt:        timestamp(e.At),
		ReleasedLockKeys:  releasedKeys(e.ReleasedLocks, nil),
		ReleasedLockCount: int64(len(e.ReleasedLocks)),
	}
}

func nodeStateToProto(s string) coordinatorv1.NodeState {
	if v, ok := coordinatorv1.NodeState_value["NODE_STATE_"+strings.ToUpper(s)]; ok {
		return coordinatorv1.NodeState(v)
	}
	return coordinatorv1.NodeState_NODE_STATE_UNSPECIFIED
}

func suffrageToProto(s string) coordinatorv1.NodeSuffrage {
	if v, ok := coordinatorv1.NodeSuffrage_value["NODE_SUFFRAGE_"+strings.ToUpper(s)]; ok {
		return coordinatorv1.NodeSuffrage(v)
	}
	return coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_UNSPECIFIED
}
