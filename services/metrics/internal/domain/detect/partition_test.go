package detect

import (
	"fmt"
	"hash/fnv"
	"testing"
)

// PartitionOf is DESIGN.md's FNV-1a (32 bit) of the classroom id modulo the
// count, as hash/fnv computes it: replicas built before and after it was
// inlined must agree on every classroom's partition.
func TestPartitionOfIsFNV1a(t *testing.T) {
	for i := range 2000 {
		id := fmt.Sprintf("classroom-%d", i)
		if i%7 == 0 {
			id = fmt.Sprintf("Ünïcode-%d-ß", i)
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		for _, n := range []int{1, 2, 16, 1024} {
			if got, want := PartitionOf(id, n), int(h.Sum32()%uint32(n)); got != want {
				t.Fatalf("PartitionOf(%q, %d) = %d, want %d", id, n, got, want)
			}
		}
	}
}
