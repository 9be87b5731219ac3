package config

import (
	"net/url"
	"regexp"
	"strings"
)

const redactedPassword = "xxxxx"

// kvPassword matches a password in the key=value connection string form,
// quoted (with backslash escapes) or bare.
var kvPassword = regexp.MustCompile(`(?i)\b(password|sslpassword)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// Redact returns connString with every password hidden, in either URL or
// key=value form, so a connection string can be logged or shown in an error
// or in Vars. It lives here rather than in pg so that a binary which only
// reads its configuration does not link the database driver. Input it
// cannot parse is masked generously rather than risk printing a secret.
func Redact(connString string) string {
	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		return kvPassword.ReplaceAllString(connString, "${1}${2}"+redactedPassword)
	}
	u, err := url.Parse(connString)
	if err != nil {
		return redactBrokenURL(connString)
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redactedPassword)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for _, key := range []string{"password", "sslpassword"} {
			if q.Has(key) {
				q.Set(key, redactedPassword)
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactBrokenURL handles a URL that does not parse, typically because the
// password holds an unescaped '/', '?' or '#': the whole user-info is
// dropped, since where the password ends cannot be known.
func redactBrokenURL(connString string) string {
	scheme, rest, _ := strings.Cut(connString, "://")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = redactedPassword + rest[at:]
	}
	return scheme + "://" + kvPassword.ReplaceAllString(rest, "${1}${2}"+redactedPassword)
}
