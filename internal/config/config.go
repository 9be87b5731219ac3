package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Error is one variable whose value cannot be used.
type Error struct {
	Var      string
	Value    string
	Expected string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s=%q: expected %s", e.Var, e.Value, e.Expected)
}

// Var describes one variable a Loader was asked for.
type Var struct {
	Name    string
	Default string
	Value   string // the value in effect; passwords in database URLs are hidden
}

// Loader reads variables through lookup and records every problem, so that
// a service can ask for all its settings and report all mistakes in one go
// instead of one per restart.
type Loader struct {
	lookup func(string) (string, bool)
	vars   []Var
	seen   map[string]bool
	errs   []*Error
}

// NewLoader returns a Loader reading variables with lookup; pass
// os.LookupEnv, or a map's lookup in tests.
func NewLoader(lookup func(string) (string, bool)) *Loader {
	return &Loader{lookup: lookup, seen: make(map[string]bool)}
}

// Err returns nil if every variable was valid, else one error listing all
// the problems on one line, in the order the variables were asked for.
// errors.As finds each *Error in it.
func (l *Loader) Err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return &loadError{errs: l.errs}
}

// Vars lists every variable asked for, in the order first asked.
func (l *Loader) Vars() []Var {
	return append([]Var(nil), l.vars...)
}

// String returns the variable as it is; set to empty, it is empty.
func (l *Loader) String(name, def string) string {
	raw, ok := l.lookup(name)
	if !ok {
		raw = def
	}
	l.record(name, def, raw)
	return raw
}

// NonEmpty is String for a value that must say something: set to empty or
// only whitespace is an error.
func (l *Loader) NonEmpty(name, def string) string {
	return get(l, name, def, def, func(raw string) (string, string, string) {
		if strings.TrimSpace(raw) == "" {
			return "", "", "a non-empty value"
		}
		return raw, raw, ""
	})
}

// Int returns an integer from min to max inclusive.
func (l *Loader) Int(name string, def, min, max int) int {
	return get(l, name, def, strconv.Itoa(def), func(raw string) (int, string, string) {
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil || n < min || n > max {
			return 0, "", fmt.Sprintf("an integer from %d to %d", min, max)
		}
		return n, strconv.Itoa(n), ""
	})
}

// Bool accepts true/false, 1/0 and yes/no in any case.
func (l *Loader) Bool(name string, def bool) bool {
	return get(l, name, def, strconv.FormatBool(def), func(raw string) (bool, string, string) {
		switch strings.ToLower(strings.TrimSpace(raw)) {
		case "true", "1", "yes":
			return true, "true", ""
		case "false", "0", "no":
			return false, "false", ""
		}
		return false, "", "one of true, false, 1, 0, yes, no"
	})
}

// Duration accepts Go duration syntax (500ms, 1m30s) and rejects values
// below min; pass a positive min to reject zero and negative durations.
func (l *Loader) Duration(name string, def, min time.Duration) time.Duration {
	return get(l, name, def, def.String(), func(raw string) (time.Duration, string, string) {
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return 0, "", "a duration such as 1m30s or 500ms"
		}
		if d < min {
			return 0, "", fmt.Sprintf("a duration of at least %s", min)
		}
		return d, d.String(), ""
	})
}

// ListenAddr returns an address to listen on: host:port where the host may
// be empty (all interfaces) and the port is 0 to 65535 (0 picks a free one).
func (l *Loader) ListenAddr(name, def string) string {
	return get(l, name, def, def, func(raw string) (string, string, string) {
		addr := strings.TrimSpace(raw)
		if !validHostPort(addr, true, 0) {
			return "", "", "host:port such as " + example(def, "0.0.0.0:8080")
		}
		return addr, addr, ""
	})
}

// DialAddr returns an address to connect to: host:port with a host and a
// port from 1 to 65535.
func (l *Loader) DialAddr(name, def string) string {
	return get(l, name, def, def, func(raw string) (string, string, string) {
		addr := strings.TrimSpace(raw)
		if !validHostPort(addr, false, 1) {
			return "", "", "host:port such as " + example(def, "127.0.0.1:8080")
		}
		return addr, addr, ""
	})
}

// DialAddrList returns a comma-separated list of DialAddr values. Blank
// entries are skipped, so an empty value is an empty list.
func (l *Loader) DialAddrList(name string, def []string) []string {
	return get(l, name, def, strings.Join(def, ","), func(raw string) ([]string, string, string) {
		addrs := []string{}
		for entry := range strings.SplitSeq(raw, ",") {
			addr := strings.TrimSpace(entry)
			if addr == "" {
				continue
			}
			if !validHostPort(addr, false, 1) {
				return nil, "", fmt.Sprintf("a comma-separated list of host:port such as %s (%q is not host:port)",
					example(strings.Join(def, ","), "10.0.0.1:8300,10.0.0.2:8300"), addr)
			}
			addrs = append(addrs, addr)
		}
		return addrs, strings.Join(addrs, ","), ""
	})
}

// Enum returns the allowed value that matches the variable ignoring case,
// spelled as in allowed.
func (l *Loader) Enum(name, def string, allowed ...string) string {
	return get(l, name, def, def, func(raw string) (string, string, string) {
		for _, a := range allowed {
			if strings.EqualFold(strings.TrimSpace(raw), a) {
				return a, a, ""
			}
		}
		return "", "", "one of " + strings.Join(allowed, ", ")
	})
}

// Custom returns a string variable that parse accepts, for values whose
// checking belongs to another package (pg.URL checks a database URL with the
// driver, which config does not link). parse returns the value to use, or
// expected, what a usable value looks like, when raw will not do. show turns
// a value into what Vars and errors print, to hide secrets; nil prints it as
// it is.
func (l *Loader) Custom(name, def string, show func(string) string, parse func(raw string) (value, expected string)) string {
	if show == nil {
		show = func(v string) string { return v }
	}
	return get(l, name, def, show(def), func(raw string) (string, string, string) {
		v, expected := parse(raw)
		if expected != "" {
			return "", "", expected
		}
		return v, show(v), ""
	})
}

// get is what every typed accessor shares. Unset means def. Set means
// parse, which returns the value, how Vars should show it, and, if raw is
// unusable, what was expected instead. A bad value is recorded as an error
// and def returned, so loading goes on to find further mistakes.
func get[T any](l *Loader, name string, def T, shownDef string, parse func(raw string) (v T, shown, expected string)) T {
	raw, ok := l.lookup(name)
	if !ok {
		l.record(name, shownDef, shownDef)
		return def
	}
	v, shown, expected := parse(raw)
	if expected != "" {
		// A variable several components read is reported once.
		l.Reject(name, redactIfURL(raw), expected)
		l.record(name, shownDef, shownDef)
		return def
	}
	l.record(name, shownDef, shown)
	return v
}

func (l *Loader) record(name, def, value string) {
	if l.seen[name] {
		return
	}
	l.seen[name] = true
	l.vars = append(l.vars, Var{Name: name, Default: def, Value: value})
}

// redactIfURL hides a password in a value that looks like a connection
// string, whichever accessor rejected it.
func redactIfURL(raw string) string {
	if strings.Contains(raw, "://") || strings.Contains(strings.ToLower(raw), "password") {
		return Redact(raw)
	}
	return raw
}

// validHostPort checks host:port. IPv6 hosts are bracketed ([::1]:80).
func validHostPort(addr string, emptyHostOK bool, minPort int) bool {
	host, port, ok := splitHostPort(addr)
	if !ok {
		return false
	}
	if host == "" && !emptyHostOK {
		return false
	}
	if host != "" && !validHost(host) {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false // rejects service names like "http" and signs
		}
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= minPort && n <= 65535
}

func splitHostPort(addr string) (host, port string, ok bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", false
	}
	host, port = addr[:i], addr[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", "", false
		}
		ip, err := netip.ParseAddr(host[1 : len(host)-1])
		return host, port, err == nil && ip.Is6()
	}
	if strings.Contains(host, ":") {
		return "", "", false // an unbracketed IPv6 address is ambiguous
	}
	return host, port, true
}

// validHost accepts IP addresses and DNS names (letters, digits, '-', '_'
// and '.', labels up to 63 bytes).
func validHost(host string) bool {
	if strings.HasPrefix(host, "[") {
		return true // checked by splitHostPort
	}
	if len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// example prefers the variable's own default as the example in a message.
func example(def, fallback string) string {
	if def != "" {
		return def
	}
	return fallback
}

// loadError is every bad variable from one Loader.
type loadError struct {
	errs []*Error
}

func (e *loadError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e *loadError) Unwrap() []error {
	errs := make([]error, len(e.errs))
	for i, err := range e.errs {
		errs[i] = err
	}
	return errs
}
