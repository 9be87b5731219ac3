package config_test

import (
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/internal/config"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"url with password", "postgres://gaia:s3cret@db:5432/gaia?sslmode=disable", "postgres://gaia:xxxxx@db:5432/gaia?sslmode=disable"},
		{"postgresql scheme", "postgresql://gaia:s3cret@db/gaia", "postgresql://gaia:xxxxx@db/gaia"},
		{"url without password", "postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres"},
		{"url without user", "postgres://127.0.0.1/gaia", "postgres://127.0.0.1/gaia"},
		{"password in query", "postgres://db/gaia?password=s3cret&sslmode=disable", "postgres://db/gaia?password=xxxxx&sslmode=disable"},
		{"sslpassword in query", "postgres://u@db/gaia?sslpassword=s3cret", "postgres://u@db/gaia?sslpassword=xxxxx"},
		{"escaped password", "postgres://gaia:s3%40c%2Fret@db/gaia", "postgres://gaia:xxxxx@db/gaia"},
		{"key value", "host=db user=gaia password=s3cret dbname=gaia", "host=db user=gaia password=xxxxx dbname=gaia"},
		{"key value quoted", "host=db password='s3 cr\\'et' dbname=gaia", "host=db password=xxxxx dbname=gaia"},
		{"key value spaced", "host=db password = s3cret dbname=gaia", "host=db password = xxxxx dbname=gaia"},
		{"key value upper", "host=db PASSWORD=s3cret", "host=db PASSWORD=xxxxx"},
		{"broken url keeps host", "postgres://gaia:s3/cr?et@db:5432/gaia", "postgres://xxxxx@db:5432/gaia"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := config.Redact(tt.in)
			if got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "s3") || strings.Contains(got, "cret") {
				t.Errorf("Redact(%q) = %q still shows the password", tt.in, got)
			}
		})
	}
}
