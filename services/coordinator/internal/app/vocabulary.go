package app

import "github.com/gaia-platform/gaia/services/coordinator/internal/state"

// The words of the coordinator's use cases, under app's names so that ports
// depends on app alone and never on the state store. They are the state
// package's own types (aliases, not copies): a committed session and its
// events mean the same thing on both sides, and converting between two
// identical structs would only add code.
type (
	// Tier is a session's place in the agent hierarchy.
	Tier = state.Tier
	// Provider is the model provider behind a session.
	Provider = state.Provider
	// Status is a session's committed lifecycle state.
	Status = state.Status
	// EventType says what happened to a session.
	EventType = state.EventType
	// TimeWindow is a recurring weekly period in a time zone.
	TimeWindow = state.TimeWindow
	// Session is a session as committed, without the leader's lease.
	Session = state.Session
	// SessionEvent is one committed change to a session.
	SessionEvent = state.Event
	// Credential is a credential as recorded: who it was issued to, by
	// whom, and whether it has been revoked. The token itself is never kept.
	Credential = state.Credential
)

// Tiers, providers, statuses and event types.
const (
	TierHighLevel = state.TierHighLevel
	TierManager   = state.TierManager
	TierWorker    = state.TierWorker

	ProviderClaude = state.ProviderClaude
	ProviderCodex  = state.ProviderCodex
	ProviderOllama = state.ProviderOllama
	ProviderOpenAI = state.ProviderOpenAI
	ProviderGemini = state.ProviderGemini
	ProviderOther  = state.ProviderOther

	StatusRegistered   = state.StatusRegistered
	StatusActive       = state.StatusActive
	StatusSuspect      = state.StatusSuspect
	StatusFailed       = state.StatusFailed
	StatusDeregistered = state.StatusDeregistered

	EventRegistered   = state.EventRegistered
	EventActive       = state.EventActive
	EventSuspect      = state.EventSuspect
	EventFailed       = state.EventFailed
	EventRecovered    = state.EventRecovered
	EventDeregistered = state.EventDeregistered
	EventSnapshot     = state.EventSnapshot
)
