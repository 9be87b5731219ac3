package grpcserver

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/gaia-platform/gaia/internal/config"
)

// DefaultMaxReplyBytes is the byte budget of one unary reply: comfortably
// under the 4 MiB that gRPC clients accept by default, so that a reply the
// server builds is one the client can take. ClaimTasks with max_tasks 100
// over 250 KB tasks once claimed 100 tasks for a 25 MB reply the client
// refused, and the claims sat invisible until their lease ran out.
const DefaultMaxReplyBytes = 3 << 20

// LoadMaxReplyBytes reads GRPC_MAX_REPLY_BYTES, the byte budget every
// GAIA service keeps its replies within (claims and list pages stop short
// of it and say so). At least 1 MiB, so that any one item fits.
func LoadMaxReplyBytes(l *config.Loader) int {
	return l.Int("GRPC_MAX_REPLY_BYTES", DefaultMaxReplyBytes, 1<<20, 1<<30)
}

// ReplyBudget counts the bytes of a reply's repeated field as items are
// added to it, so that a page stops before the reply would pass the budget.
type ReplyBudget struct {
	left  int
	added bool
}

// replyReserve is left for a reply's other fields: page tokens, counts, flags.
const replyReserve = 4 << 10

// NewReplyBudget is a budget of max bytes; max ≤ 0 means DefaultMaxReplyBytes.
func NewReplyBudget(max int) *ReplyBudget {
	if max <= 0 {
		max = DefaultMaxReplyBytes
	}
	return &ReplyBudget{left: max - replyReserve}
}

// Add counts m as one more element of a repeated message field and reports
// whether it fits; one that does not is not counted. The first item always
// fits, so that a page holds at least one whatever its size.
func (b *ReplyBudget) Add(m proto.Message) bool {
	return b.AddBytes(ElementSize(proto.Size(m)))
}

// AddBytes is Add for an element already measured with ElementSize.
func (b *ReplyBudget) AddBytes(n int) bool {
	if n > b.left && b.added {
		return false
	}
	b.left -= n
	b.added = true
	return true
}

// Reserve sets n bytes aside for what the reply must carry whatever else
// fits.
func (b *ReplyBudget) Reserve(n int) {
	b.left -= n
	b.added = true
}

// Left is the budget not yet used (negative once a first item passed it).
func (b *ReplyBudget) Left() int { return b.left }

// ElementSize is what an element of size n adds to a repeated field on the
// wire: its tag, its length and itself.
func ElementSize(n int) int { return protowire.SizeTag(1) + protowire.SizeBytes(n) }
