package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/config"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// unset marks a case where the variable is absent, as opposed to set to "".
const unset = "\x00unset"

func loader(value string) *config.Loader {
	if value == unset {
		return config.NewLoader(env(nil))
	}
	return config.NewLoader(env(map[string]string{"V": value}))
}

// checkErr asserts the loader's error: none when wantExpected is "", else
// exactly one, naming V and saying wantExpected.
func checkErr(t *testing.T, l *config.Loader, value, wantExpected string) {
	t.Helper()
	err := l.Err()
	if wantExpected == "" {
		if err != nil {
			t.Fatalf("Err() = %v, want nil", err)
		}
		return
	}
	var cfgErr *config.Error
	if !errors.As(err, &cfgErr) {
		t.Fatalf("Err() = %v, want a *config.Error", err)
	}
	if cfgErr.Var != "V" || cfgErr.Value != value || !strings.Contains(cfgErr.Expected, wantExpected) {
		t.Errorf("error = %+v, want Var V, Value %q, Expected containing %q", cfgErr, value, wantExpected)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"unset uses default", unset, "def"},
		{"set", "x y ", "x y "},
		{"empty is allowed", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.String("V", "def"); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
			checkErr(t, l, tt.value, "")
		})
	}
}

func TestNonEmpty(t *testing.T) {
	tests := []struct {
		name, value, want, wantErr string
	}{
		{"unset uses default", unset, "def", ""},
		{"set", "node-1", "node-1", ""},
		{"empty", "", "def", "non-empty"},
		{"whitespace", " \t", "def", "non-empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.NonEmpty("V", "def"); got != tt.want {
				t.Errorf("NonEmpty = %q, want %q", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		name, value string
		want        int
		wantErr     string
	}{
		{"unset uses default", unset, 8, ""},
		{"in range", "16", 16, ""},
		{"bounds are inclusive", "64", 64, ""},
		{"surrounding space", " 3 ", 3, ""},
		{"below min", "0", 8, "an integer from 1 to 64"},
		{"above max", "65", 8, "an integer from 1 to 64"},
		{"not a number", "eight", 8, "an integer from 1 to 64"},
		{"empty", "", 8, "an integer"},
		{"float", "1.5", 8, "an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.Int("V", 8, 1, 64); got != tt.want {
				t.Errorf("Int = %d, want %d", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		name, value string
		want        bool
		wantErr     string
	}{
		{"unset uses default", unset, true, ""},
		{"false", "false", false, ""},
		{"FALSE", "FALSE", false, ""},
		{"0", "0", false, ""},
		{"no", "No", false, ""},
		{"true", "True", true, ""},
		{"1", "1", true, ""},
		{"yes", "YES", true, ""},
		{"off is not accepted", "off", true, "one of true, false, 1, 0, yes, no"},
		{"empty", "", true, "one of true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.Bool("V", true); got != tt.want {
				t.Errorf("Bool = %v, want %v", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
		wantErr     string
	}{
		{"unset uses default", unset, 5 * time.Second, ""},
		{"go syntax", "1m30s", 90 * time.Second, ""},
		{"at min", "100ms", 100 * time.Millisecond, ""},
		{"below min", "99ms", 5 * time.Second, "at least 100ms"},
		{"zero", "0s", 5 * time.Second, "at least 100ms"},
		{"negative", "-1s", 5 * time.Second, "at least 100ms"},
		{"bare number", "30", 5 * time.Second, "a duration such as"},
		{"empty", "", 5 * time.Second, "a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.Duration("V", 5*time.Second, 100*time.Millisecond); got != tt.want {
				t.Errorf("Duration = %v, want %v", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		name, value, want, wantErr string
	}{
		{"unset uses default", unset, "0.0.0.0:8300", ""},
		{"empty host", ":9000", ":9000", ""},
		{"port zero", "127.0.0.1:0", "127.0.0.1:0", ""},
		{"hostname", "localhost:65535", "localhost:65535", ""},
		{"ipv6", "[::1]:8300", "[::1]:8300", ""},
		{"no port", "abc", "0.0.0.0:8300", "host:port such as 0.0.0.0:8300"},
		{"port too big", "0.0.0.0:65536", "0.0.0.0:8300", "host:port"},
		{"named port", "0.0.0.0:http", "0.0.0.0:8300", "host:port"},
		{"signed port", "0.0.0.0:+80", "0.0.0.0:8300", "host:port"},
		{"empty port", "0.0.0.0:", "0.0.0.0:8300", "host:port"},
		{"bare ipv6", "::1:8300", "0.0.0.0:8300", "host:port"},
		{"url", "http://0.0.0.0:80", "0.0.0.0:8300", "host:port"},
		{"empty", "", "0.0.0.0:8300", "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.ListenAddr("V", "0.0.0.0:8300"); got != tt.want {
				t.Errorf("ListenAddr = %q, want %q", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestDialAddr(t *testing.T) {
	tests := []struct {
		name, value, want, wantErr string
	}{
		{"unset uses default", unset, "127.0.0.1:8300", ""},
		{"hostname", "coordinator-0.coordinator:8300", "coordinator-0.coordinator:8300", ""},
		{"ipv6", "[fd00::2]:1", "[fd00::2]:1", ""},
		{"empty host", ":8300", "127.0.0.1:8300", "host:port such as 127.0.0.1:8300"},
		{"port zero", "db:0", "127.0.0.1:8300", "host:port"},
		{"space in host", "my host:80", "127.0.0.1:8300", "host:port"},
		{"empty", "", "127.0.0.1:8300", "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.DialAddr("V", "127.0.0.1:8300"); got != tt.want {
				t.Errorf("DialAddr = %q, want %q", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestDialAddrList(t *testing.T) {
	def := []string{"a:1"}
	tests := []struct {
		name, value string
		want        []string
		wantErr     string
	}{
		{"unset uses default", unset, []string{"a:1"}, ""},
		{"list", "n1:8300,n2:8300", []string{"n1:8300", "n2:8300"}, ""},
		{"blanks ignored", " n1:8300 , ,n2:8300,", []string{"n1:8300", "n2:8300"}, ""},
		{"empty is an empty list", "", []string{}, ""},
		{"bad entry named", "n1:8300,n2", []string{"a:1"}, `"n2" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.DialAddrList("V", def); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DialAddrList = %#v, want %#v", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestEnum(t *testing.T) {
	tests := []struct {
		name, value, want, wantErr string
	}{
		{"unset uses default", unset, "info", ""},
		{"exact", "warn", "warn", ""},
		{"any case gives canonical spelling", "DeBuG", "debug", ""},
		{"not allowed", "verbose", "info", "one of debug, info, warn, error"},
		{"empty", "", "info", "one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.Enum("V", "info", "debug", "info", "warn", "error"); got != tt.want {
				t.Errorf("Enum = %q, want %q", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestCustom(t *testing.T) {
	// Custom hands parsing to the caller and shows values through show.
	upper := func(raw string) (string, string) {
		if raw == "" {
			return "", "a non-empty value"
		}
		return strings.ToUpper(raw), ""
	}
	tests := []struct {
		name, value, want string
		wantErr           string
	}{
		{"unset uses default", unset, "def", ""},
		{"parsed", "abc", "ABC", ""},
		{"rejected", "", "def", "a non-empty value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := loader(tt.value)
			if got := l.Custom("V", "def", nil, upper); got != tt.want {
				t.Errorf("Custom = %q, want %q", got, tt.want)
			}
			checkErr(t, l, tt.value, tt.wantErr)
		})
	}
}

func TestErrListsEveryProblemOnOneLineInOrder(t *testing.T) {
	l := config.NewLoader(env(map[string]string{
		"CLUSTER_BIND_ADDR": "abc",
		"WORKERS":           "many",
		"LOG_LEVEL":         "loud\ner",
		"OK":                "7",
	}))
	l.ListenAddr("CLUSTER_BIND_ADDR", "0.0.0.0:8300")
	l.Int("OK", 1, 1, 10)
	l.Int("WORKERS", 4, 1, 64)
	l.Enum("LOG_LEVEL", "info", "debug", "info")

	err := l.Err()
	if err == nil {
		t.Fatal("Err() = nil, want the three problems")
	}
	want := `CLUSTER_BIND_ADDR="abc": expected host:port such as 0.0.0.0:8300; ` +
		`WORKERS="many": expected an integer from 1 to 64; ` +
		`LOG_LEVEL="loud\ner": expected one of debug, info`
	if err.Error() != want {
		t.Errorf("Err() =\n%s\nwant\n%s", err, want)
	}

	var cfgErr *config.Error
	if !errors.As(err, &cfgErr) || cfgErr.Var != "CLUSTER_BIND_ADDR" {
		t.Errorf("errors.As found %+v, want the CLUSTER_BIND_ADDR error first", cfgErr)
	}
}

func TestVarsListsEveryVariableAskedFor(t *testing.T) {
	l := config.NewLoader(env(map[string]string{
		"WORKERS":      "16",
		"LOG_LEVEL":    "DEBUG",
		"DATABASE_URL": "postgres://gaia:s3cret@db/gaia",
		"BAD":          "x",
		"PEERS":        "a:1, b:2",
	}))
	l.Int("WORKERS", 4, 1, 64)
	l.Enum("LOG_LEVEL", "info", "debug", "info")
	l.Duration("TIMEOUT", 5*time.Second, time.Second)
	l.Custom("DATABASE_URL", "postgres://postgres:pw@127.0.0.1/gaia", config.Redact, func(raw string) (string, string) { return raw, "" })
	l.Int("BAD", 3, 1, 5)
	l.DialAddrList("PEERS", nil)
	l.Int("WORKERS", 4, 1, 64) // asked twice, listed once

	want := []config.Var{
		{Name: "WORKERS", Default: "4", Value: "16"},
		{Name: "LOG_LEVEL", Default: "info", Value: "debug"},
		{Name: "TIMEOUT", Default: "5s", Value: "5s"},
		{Name: "DATABASE_URL", Default: "postgres://postgres:xxxxx@127.0.0.1/gaia", Value: "postgres://gaia:xxxxx@db/gaia"},
		{Name: "BAD", Default: "3", Value: "3"},
		{Name: "PEERS", Default: "", Value: "a:1,b:2"},
	}
	if got := l.Vars(); !reflect.DeepEqual(got, want) {
		t.Errorf("Vars() =\n%+v\nwant\n%+v", got, want)
	}
}

// A variable that several services of `gaia up` read is reported once.
func TestSharedVariableReportedOnce(t *testing.T) {
	l := config.NewLoader(func(name string) (string, bool) {
		if name == "SHUTDOWN_TIMEOUT" {
			return "soon", true
		}
		return "", false
	})
	l.Duration("SHUTDOWN_TIMEOUT", time.Second, time.Millisecond)
	l.Duration("SHUTDOWN_TIMEOUT", time.Second, time.Millisecond)
	l.Reject("SHUTDOWN_TIMEOUT", "soon", "anything")
	if got := strings.Count(l.Err().Error(), "SHUTDOWN_TIMEOUT"); got != 1 {
		t.Fatalf("error names the variable %d times: %v", got, l.Err())
	}
}
