// Package agent turns a piece of Go code into a coordinated GAIA agent
// session: it registers a session with the coordinator, keeps its heartbeat
// stream up across leader changes, claims tasks from the task queue up to its
// capacity, takes the locks a task names (with fencing tokens), keeps the
// claim and the locks alive while the task runs, and completes or fails the
// task with the handler's outcome.
//
// The guarantees a handler can rely on:
//
//   - A task's context is cancelled at once when its claim is lost (taken
//     back, cancelled), when a lock it holds is lost, or when the session is
//     lost (failed, or no heartbeat acknowledged for a whole lease). A task
//     never keeps running after its claim is gone.
//   - Locks named in the payload's "locks" list are held, in key order, for
//     the whole run; their fencing tokens are in Task.Locks.
//   - Settling never strands a claim: completing or failing is retried for
//     30 s while the queue is unreachable; a completion the queue refuses
//     (a result it cannot store) fails the task at once, for good, with the
//     reason, instead of leaving it claimed until its claim timeout.
//   - On shutdown (the context given to Run ends) no new task is claimed;
//     running tasks get the grace period to finish, then are cancelled and
//     failed as retryable; the session is deregistered.
//
// `gaia session run` is built on this package.
package agent
