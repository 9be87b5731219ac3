// Package migrations embeds the SQL migrations of every service that owns
// tables, one folder per bounded context. Each folder is applied to the
// PostgreSQL schema of the same name by internal/pg/migrate, at service start and
// by `gaia migrate`. Files are named NNNN_description.sql and, once released,
// never change: a change is a new file.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed taskqueue/*.sql metrics/*.sql dashboard/*.sql
var files embed.FS

// Contexts lists the bounded contexts that own tables, in the order `gaia
// migrate` applies them. Each is also the name of its PostgreSQL schema.
var Contexts = []string{"taskqueue", "metrics", "dashboard"}

// For returns the migrations of one context.
func For(context string) (fs.FS, error) {
	for _, c := range Contexts {
		if c == context {
			return fs.Sub(files, context)
		}
	}
	return nil, fmt.Errorf("no migrations for context %q", context)
}
