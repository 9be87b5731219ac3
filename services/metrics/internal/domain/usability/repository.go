package usability

import (
	"context"
	"time"
)

// EventStore writes groups of events.
type EventStore interface {
	// Write stores events (no two with the same Key) in one transaction and
	// reports for each whether it was new (false: it was already stored). It
	// returns only after the transaction committed; on error nothing of the
	// group is stored, or the outcome is unknown and a retry is safe.
	Write(ctx context.Context, events []Event, receivedAt time.Time) (inserted []bool, err error)
}

// Partition is one time range of the events table.
type Partition struct {
	Name     string
	From, To time.Time
}

// PartitionStore manages the events table's native time partitions.
type PartitionStore interface {
	// Ensure creates the daily partitions covering [from, to) that are missing.
	Ensure(ctx context.Context, from, to time.Time) (created []Partition, err error)
	// DropBefore drops the partitions that end at or before t.
	DropBefore(ctx context.Context, t time.Time) (dropped []Partition, err error)
	// List returns the partitions present, oldest first.
	List(ctx context.Context) ([]Partition, error)
	// PruneRollups deletes per-minute rollups of minutes before t.
	PruneRollups(ctx context.Context, t time.Time) (int64, error)
}

// RatingStore stores and summarises ratings.
type RatingStore interface {
	// Insert stores r unless a rating with its id exists in its classroom and
	// app; it returns the stored rating and whether it was already there.
	Insert(ctx context.Context, r Rating) (stored Rating, duplicate bool, err error)
	Summary(ctx context.Context, f RatingFilter) (RatingSummary, error)
}

// SnapshotStore reads the per-minute classroom rollups.
type SnapshotStore interface {
	// Get returns the classroom's rollup of one minute (ErrSnapshotNotFound
	// when it had no events).
	Get(ctx context.Context, classroomID string, minute time.Time) (Snapshot, error)
	// List returns up to limit rollups of minutes in [from, to) after the
	// minute after (zero: from the start), oldest first.
	List(ctx context.Context, classroomID string, from, to, after time.Time, limit int) ([]Snapshot, error)
	// Latest is the start of the last minute with events in the classroom
	// strictly before t (zero when none).
	Latest(ctx context.Context, classroomID string, before time.Time) (time.Time, error)
	// Students returns up to limit students of the classroom, by student id
	// after the id after, with an event that happened at or after since.
	Students(ctx context.Context, classroomID string, since time.Time, after string, limit int) ([]ActiveStudent, error)
}

// ActiveStudent is a student's recent activity in a classroom.
type ActiveStudent struct {
	StudentID   string
	LastEventAt time.Time
	Events      int64
	// CurrentItemID is the item of the latest event about an item, unless
	// that event finished it; empty otherwise.
	CurrentItemID string
}

// RollupFeed keeps the per-minute classroom rollups from the committed
// events, exactly once each.
type RollupFeed interface {
	// Step applies up to limit events committed since the last step and
	// returns how many, and the latest receive time among them.
	Step(ctx context.Context, limit int) (applied int, newest time.Time, err error)
}
