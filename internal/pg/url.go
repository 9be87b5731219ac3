package pg

import (
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gaia-platform/gaia/internal/config"
)

// URL reads a PostgreSQL connection string from the variable name, as a
// postgres:// or postgresql:// URL or in key=value form, checked by the
// driver's own parser. Its password never appears in an error or in Vars.
func URL(l *config.Loader, name, def string) string {
	const expected = "a PostgreSQL URL such as postgres://user:password@host:5432/dbname"
	return l.Custom(name, def, config.Redact, func(raw string) (string, string) {
		connString := strings.TrimSpace(raw)
		if connString == "" {
			// pgx would read an empty string as "all libpq defaults",
			// which is never what someone who set the variable meant.
			return "", expected
		}
		if _, err := pgx.ParseConfig(connString); err != nil {
			return "", expected
		}
		return connString, ""
	})
}

// Redact is config.Redact: it hides every password in a connection string.
func Redact(connString string) string { return config.Redact(connString) }
