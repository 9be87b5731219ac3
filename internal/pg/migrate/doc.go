// Package migrate applies a service's embedded SQL migrations to its own
// PostgreSQL schema, exactly once each, even when several replicas start at
// the same moment.
//
// Migrations are files named NNNN_name.sql at the root of an fs.FS
// (typically an embed.FS). Each runs in its own transaction together with
// the row that records it in <schema>.schema_migrations, so a failed
// migration leaves no trace; one whose first line is
// "-- gaia:no-transaction" runs outside a transaction, for statements such
// as CREATE INDEX CONCURRENTLY, and must then be safe to re-run.
//
// The package owns only the schema_migrations table. It refuses to touch a
// database whose history does not match the files: an applied migration that
// was edited, or one the binary does not know (the database is newer).
package migrate
