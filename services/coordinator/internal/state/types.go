package state

import (
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/window"
)

// Tier is a session's place in the agent hierarchy.
type Tier string

// Tiers.
const (
	TierHighLevel Tier = "high_level"
	TierManager   Tier = "manager"
	TierWorker    Tier = "worker"
)

// Provider is the model provider behind a session.
type Provider string

// Providers.
const (
	ProviderClaude Provider = "claude"
	ProviderCodex  Provider = "codex"
	ProviderOllama Provider = "ollama"
	ProviderOpenAI Provider = "openai"
	ProviderGemini Provider = "gemini"
	ProviderOther  Provider = "other"
)

// Status is a session's committed lifecycle state.
type Status string

// Statuses. Failed and deregistered are final.
const (
	StatusRegistered   Status = "registered"
	StatusActive       Status = "active"
	StatusSuspect      Status = "suspect"
	StatusFailed       Status = "failed"
	StatusDeregistered Status = "deregistered"
)

// Live reports whether a session in this status still exists for its owner.
func (s Status) Live() bool {
	return s == StatusRegistered || s == StatusActive || s == StatusSuspect
}

// EventType says what happened to a session.
type EventType string

// Event types.
const (
	EventRegistered   EventType = "registered"
	EventActive       EventType = "active"
	EventSuspect      EventType = "suspect"
	EventFailed       EventType = "failed"
	EventRecovered    EventType = "recovered"
	EventDeregistered EventType = "deregistered"
	EventSnapshot     EventType = "snapshot"
)

// TimeWindow is a recurring weekly period in a time zone.
type TimeWindow = window.Window

// Session is a registered agent session as committed. Liveness details that
// change with every heartbeat (last beat, task count, activity) are not here:
// they live in the leader's memory, by design.
type Session struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Tier                Tier              `json:"tier"`
	Provider            Provider          `json:"provider"`
	MaxConcurrentTasks  int               `json:"max_concurrent_tasks"`
	TimeWindows         []TimeWindow      `json:"time_windows,omitempty"`
	Labels              map[string]string `json:"labels,omitempty"`
	TokenHash           []byte            `json:"token_hash"`
	Status              Status            `json:"status"`
	ConsecutiveFailures int               `json:"consecutive_failures"`
	RegisteredAt        time.Time         `json:"registered_at"`
	RegisteredIndex     uint64            `json:"registered_index"`
	StatusChangedAt     time.Time         `json:"status_changed_at"`
	// LastHeartbeatAt is the last beat the leader had seen when it committed
	// the latest transition; the live value is in the leader's memory.
	LastHeartbeatAt time.Time `json:"last_heartbeat_at,omitzero"`
}

// Lock is a held lock.
type Lock struct {
	Key          string        `json:"key"`
	OwnerID      string        `json:"owner_id"`
	OwnerName    string        `json:"owner_name"`
	FencingToken uint64        `json:"fencing_token"`
	AcquiredAt   time.Time     `json:"acquired_at"`
	TTL          time.Duration `json:"ttl"`
	ExpiresAt    time.Time     `json:"expires_at"`
}

// Event is one committed change to a session.
type Event struct {
	Index         uint64    `json:"index"`
	Type          EventType `json:"type"`
	Session       Session   `json:"session"`
	At            time.Time `json:"at"`
	ReleasedLocks []string  `json:"released_locks,omitempty"`
}

// Node is a cluster member's gRPC address, recorded so that followers can
// forward to whichever node leads.
type Node struct {
	ID          string `json:"id"`
	GRPCAddress string `json:"grpc_address"`
}

// Domain errors. The gRPC interceptor maps their kinds to status codes.
var (
	ErrSessionNotFound = domainerr.New(domainerr.NotFound, "session not found")
	ErrNameTaken       = domainerr.New(domainerr.AlreadyExists, "a live session already has this name")
	ErrSessionIDTaken  = domainerr.New(domainerr.AlreadyExists, "session id already exists")
	ErrSessionFailed   = domainerr.New(domainerr.FailedPrecondition, "session has failed")
	ErrSessionGone     = domainerr.New(domainerr.FailedPrecondition, "session was deregistered")
	ErrSessionSuspect  = domainerr.New(domainerr.FailedPrecondition, "session is suspect: its lease ran out; heartbeat first")
	ErrWrongToken      = domainerr.New(domainerr.Unauthenticated, "session token does not match")
	ErrLockHeld        = domainerr.New(domainerr.Aborted, "lock is held by another session")
	ErrLockNotFound    = domainerr.New(domainerr.NotFound, "lock is not held")
	ErrNotLockOwner    = domainerr.New(domainerr.PermissionDenied, "lock is held by another session")
	ErrStaleFencing    = domainerr.New(domainerr.FailedPrecondition, "fencing token is stale: the lock was granted again since")
	ErrUnknownCommand  = domainerr.New(domainerr.InvalidArgument, "unknown command")
)

// LiveErr is the error for using a session that is not live.
func LiveErr(s *Session) error {
	switch s.Status {
	case StatusFailed:
		return ErrSessionFailed
	case StatusDeregistered:
		return ErrSessionGone
	}
	return nil
}
