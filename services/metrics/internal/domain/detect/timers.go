package detect

// absDiff is the distance between two nanosecond or pixel values.
func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// timer is an idle deadline of one student; timerHeap orders them soonest first.
type timer struct {
	at int64
	s  *student
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}
