package detect

import (
	"context"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Sentinel errors of detection.
var (
	// ErrFenced: a newer owner holds the partition; the write was refused.
	ErrFenced = domainerr.New(domainerr.FailedPrecondition, "detector partition has a newer owner (stale fencing token)")
	// ErrDetectionDisabled answers nothing: detection is off, history stays
	// readable. Used by callers that need the detector itself.
	ErrDetectionDisabled = domainerr.New(domainerr.FailedPrecondition, "frustration detection is disabled on this server (FRUSTRATION_DETECTION_ENABLED=false)")
)

// PartitionOf is the detector partition of a classroom: FNV-1a (32 bit) of
// its id modulo the partition count (DESIGN.md: hash(classroom_id) mod N).
// Every replica must run with the same count.
func PartitionOf(classroomID string, partitions int) int {
	// hash/fnv's, inlined: the detector hashes every event it reads, and
	// fnv.New32a allocates.
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(classroomID); i++ {
		h ^= uint32(classroomID[i])
		h *= prime32
	}
	return int(h % uint32(partitions))
}

// LockKey is the coordinator lock that owns a partition.
func LockKey(partition int) string { return "metrics/detector/" + formatInt(int64(partition)) }

// FrustrationEvent is a stored detection.
type FrustrationEvent struct {
	ID uint64
	Detection
	DetectedAt time.Time
}

// ListFilter selects frustration events. Zero fields do not filter.
type ListFilter struct {
	ClassroomIDs []string
	StudentID    string
	Indicators   []Indicator
	MinSeverity  Severity
	AfterID      uint64
	From, To     time.Time
	Limit        int
}

// Position is a point in the committed events: everything at or before
// (Xid, Ord) in (commit_xid, commit_ord) order has been read. Ord −1 is
// before every event of Xid.
type Position struct {
	Xid uint64
	Ord int32
}

// Before orders positions.
func (p Position) Before(o Position) bool {
	return p.Xid < o.Xid || (p.Xid == o.Xid && p.Ord < o.Ord)
}

// Checkpoint is where a partition's detection stands: the events and ratings
// read, and the engine's state as of then (nil: none yet).
type Checkpoint struct {
	Events     Position
	RatingsXid uint64 // every rating with commit_xid below it was read
	State      []byte
	At         time.Time // when it was saved (zero: never)
}

// PartitionRef names one partition of a partition count, and its owner's
// fencing token.
type PartitionRef struct {
	Partitions int
	Partition  int
	Token      uint64
	Owner      string
}

// PartitionFindings are one partition's detections to write.
type PartitionFindings struct {
	Ref        PartitionRef
	Detections []Detection
}

// PartitionStore keeps the partitions' owners and checkpoints and writes
// what they find. Every write carries the writer's fencing token and is
// refused with ErrFenced once a newer owner has claimed the partition.
type PartitionStore interface {
	// Claim records a new owner (its token must not be older than the
	// stored one) and returns the partition's checkpoint; a partition never
	// claimed starts at the current end of the committed events.
	Claim(ctx context.Context, p PartitionRef) (Checkpoint, error)
	// Write stores the detections of several partitions in one transaction,
	// under their idempotency keys, and returns the ones that were new, with
	// their ids. Each partition is fenced by its own token: one whose token is
	// stale stores nothing and is named in fenced; the others' are stored.
	Write(ctx context.Context, ws []PartitionFindings) (stored []FrustrationEvent, fenced []int, err error)
	// SaveCheckpoint records the partition's checkpoint.
	SaveCheckpoint(ctx context.Context, p PartitionRef, cp Checkpoint) error
	// Reported returns the partition's findings detected since t.
	Reported(ctx context.Context, p PartitionRef, since time.Time) ([]Detection, error)
}

// EventStore reads stored frustration events.
type EventStore interface {
	// List returns events matching f in id order.
	List(ctx context.Context, f ListFilter) ([]FrustrationEvent, error)
}

// SettingsStore keeps classrooms' settings.
type SettingsStore interface {
	// Get returns the classroom's settings and whether it has its own.
	Get(ctx context.Context, classroomID string) (Settings, bool, error)
	// Put stores the settings (UpdatedAt is set by the store).
	Put(ctx context.Context, s Settings) (Settings, error)
}

// Committed is an event read back from the events table with its position.
type Committed struct {
	Pos   Position
	Event Event
}

// CommittedRating is a rating read back (as an Event of KindRating) with the
// id of the transaction that stored it.
type CommittedRating struct {
	Xid   uint64
	Event Event
}

// SourceQuery asks for what committed below the horizon: the events after
// a position (in commit order, at most Limit), and every rating and settings
// change from their own transaction ids.
type SourceQuery struct {
	After        Position
	RatingsFrom  uint64
	SettingsFrom uint64
	Horizon      uint64
	Limit        int
}

// SourceBatch is what a SourceQuery read. Full means the events hit the
// limit: more wait before the horizon.
type SourceBatch struct {
	Events   []Committed
	Ratings  []CommittedRating
	Settings []SettingsChange
	Full     bool
}

// SettingsChange is a classroom's settings as a transaction stored them.
type SettingsChange struct {
	Xid      uint64
	Settings Settings
}

// Source reads committed events, ratings and settings changes in commit
// order, never skipping a row that commits late: it only returns rows of
// transactions below the horizon, and every transaction below it has ended.
type Source interface {
	// Horizon is the current horizon: the lowest transaction id still
	// running.
	Horizon(ctx context.Context) (uint64, error)
	// Read runs the query.
	Read(ctx context.Context, q SourceQuery) (SourceBatch, error)
}
