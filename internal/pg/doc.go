// Package pg owns how GAIA services reach PostgreSQL: opening a connection
// pool that waits for a server that is still starting, creating a service's
// database on first start, and reading a database URL from the environment
// (URL). Hiding passwords is config.Redact, so that binaries without a
// database do not link the driver.
//
// It knows nothing of any service's tables; schema changes belong to the
// migrate subpackage and each service's own migrations.
package pg
