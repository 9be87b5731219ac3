// Package background runs a service's background goroutines so that one panic
// cannot stop the process: `gaia up` runs every service in one process, and a
// goroutine that panics there ends all five. Loop restarts a long-running job
// after a recovered panic; Every runs a periodic step with its own deadline,
// so a slow or stuck step delays only its own job; Jobs runs a service's
// long-running jobs under Loop on a context of their own and stops them
// together. All log a panic with its stack and tell an optional hook, which a
// service may use to count it or to fail its health.
//
// It knows nothing of what a job does and touches no service state.
package background
