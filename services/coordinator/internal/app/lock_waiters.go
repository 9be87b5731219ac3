package app

import "sync"

// lockWaiters queues, per key, the sessions waiting for a lock, first come
// first served. It lives in the leader's memory; a new leader starts empty and
// waiting clients retry there.
type lockWaiters struct {
	mu     sync.Mutex
	queues map[string][]*waiter
}

type waiter struct {
	ready     chan struct{} // a wake-up: the lock may be free
	abandoned chan struct{} // closed when this node stops leading
}

func (w *waiter) wake() {
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

func newLockWaiters() *lockWaiters {
	return &lockWaiters{queues: map[string][]*waiter{}}
}

func (q *lockWaiters) queued(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queues[key]) > 0
}

func (q *lockWaiters) count(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queues[key])
}

func (q *lockWaiters) enqueue(key string) *waiter {
	w := &waiter{ready: make(chan struct{}, 1), abandoned: make(chan struct{})}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queues[key] = append(q.queues[key], w)
	return w
}

func (q *lockWaiters) isHead(key string, w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	ws := q.queues[key]
	return len(ws) > 0 && ws[0] == w
}

// leave removes w; if w was at the head, the next waiter gets a turn (the lock
// may be free: w either took it and will release it later, or gave up).
func (q *lockWaiters) leave(key string, w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ws := q.queues[key]
	for i, x := range ws {
		if x != w {
			continue
		}
		ws = append(ws[:i], ws[i+1:]...)
		if len(ws) == 0 {
			delete(q.queues, key)
		} else {
			q.queues[key] = ws
			if i == 0 {
				ws[0].wake()
			}
		}
		return
	}
}

// freed wakes the head waiter of each freed key. The FSM calls it on every
// node; only a leader has waiters.
func (q *lockWaiters) freed(keys []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, k := range keys {
		if ws := q.queues[k]; len(ws) > 0 {
			ws[0].wake()
		}
	}
}

// failAll abandons every waiter (on losing leadership).
func (q *lockWaiters) failAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, ws := range q.queues {
		for _, w := range ws {
			close(w.abandoned)
		}
		delete(q.queues, k)
	}
}
