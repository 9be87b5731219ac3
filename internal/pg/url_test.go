package pg_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/pg"
)

func TestURL(t *testing.T) {
	const def = "postgres://postgres@127.0.0.1:5432/gaia"
	const unset = "\x00unset"
	tests := []struct {
		name, value, want string
		wantErrValue      string // the value as the error shows it
		wantErr           string
	}{
		{"unset uses default", unset, def, "", ""},
		{"postgres scheme", "postgres://u:p@db:5432/gaia?sslmode=disable", "postgres://u:p@db:5432/gaia?sslmode=disable", "", ""},
		{"postgresql scheme", "postgresql://db/gaia", "postgresql://db/gaia", "", ""},
		{"key value", "host=db dbname=gaia", "host=db dbname=gaia", "", ""},
		{"bad port hides password", "postgres://u:s3cret@db:notaport/gaia", def, "postgres://xxxxx@db:notaport/gaia", "a PostgreSQL URL"},
		{"wrong scheme", "mysql://db/gaia", def, "mysql://db/gaia", "a PostgreSQL URL"},
		{"empty", "", def, "", "a PostgreSQL URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := config.NewLoader(func(string) (string, bool) { return tt.value, tt.value != unset })
			if got := pg.URL(l, "V", def); got != tt.want {
				t.Errorf("URL = %q, want %q", got, tt.want)
			}
			err := l.Err()
			var cfgErr *config.Error
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			case tt.wantErr != "" && !errors.As(err, &cfgErr):
				t.Errorf("Err() = %v, want a *config.Error", err)
			case tt.wantErr != "" && (cfgErr.Var != "V" || cfgErr.Value != tt.wantErrValue || !strings.Contains(cfgErr.Expected, tt.wantErr)):
				t.Errorf("error = %+v, want Var V, Value %q, Expected containing %q", cfgErr, tt.wantErrValue, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}
