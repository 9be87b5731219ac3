package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gaia-platform/gaia/internal/config"
)

// Files names the PEM files of one TLS identity: a certificate chain, its
// private key, and the CA certificates that verify the other side. A client
// that only verifies servers needs only CAFile.
type Files struct {
	CertFile string
	KeyFile  string
	CAFile   string
	// vars are the variables the paths came from, for error messages.
	vars fileVars
}

type fileVars struct{ cert, key, ca string }

// Enabled reports whether any file is named, that is whether TLS is on.
func (f Files) Enabled() bool {
	return f.CertFile != "" || f.KeyFile != "" || f.CAFile != ""
}

// HasCertificate reports whether the files include a certificate and key,
// which a server needs.
func (f Files) HasCertificate() bool { return f.CertFile != "" && f.KeyFile != "" }

// The variables Load reads, each preceded by its prefix.
const (
	CertFileVar = "TLS_CERT_FILE"
	KeyFileVar  = "TLS_KEY_FILE"
	CAFileVar   = "TLS_CA_FILE"
)

// Load reads <prefix>TLS_CERT_FILE, <prefix>TLS_KEY_FILE and
// <prefix>TLS_CA_FILE, each defaulting to the matching path in def. The
// three go together: set one, set all three. Each file is read and parsed
// once here, so that a missing, unreadable or mismatched file stops start-up
// with an error naming its variable rather than failing the first handshake.
// Unset (and no defaults), TLS is off and Files.Enabled is false.
func Load(l *config.Loader, prefix string, def Files) Files {
	f := Files{vars: fileVars{cert: prefix + CertFileVar, key: prefix + KeyFileVar, ca: prefix + CAFileVar}}
	f.CertFile = strings.TrimSpace(l.String(f.vars.cert, def.CertFile))
	f.KeyFile = strings.TrimSpace(l.String(f.vars.key, def.KeyFile))
	f.CAFile = strings.TrimSpace(l.String(f.vars.ca, def.CAFile))
	if !f.Enabled() {
		return f
	}
	together := fmt.Sprintf("a file path: %s, %s and %s go together", f.vars.cert, f.vars.key, f.vars.ca)
	for _, v := range []struct{ name, path string }{{f.vars.cert, f.CertFile}, {f.vars.key, f.KeyFile}, {f.vars.ca, f.CAFile}} {
		if v.path == "" {
			l.Reject(v.name, "", together)
		}
	}
	if f.CertFile == "" || f.KeyFile == "" || f.CAFile == "" {
		return f
	}
	if _, err := f.load(); err != nil {
		var fe *fileError
		if errors.As(err, &fe) {
			l.Reject(fe.variable, fe.path, fe.expected)
		}
	}
	return f
}

// ClientFiles is Files for a client that verifies servers with the CA
// certificates in caFile and presents no certificate of its own.
func ClientFiles(caFile string) Files {
	return Files{CAFile: caFile, vars: fileVars{cert: CertFileVar, key: KeyFileVar, ca: CAFileVar}}
}

// ServiceFiles is Files for a certificate, its key and a CA bundle named
// directly rather than through Load (the local launcher, tests).
func ServiceFiles(certFile, keyFile, caFile string) Files {
	return Files{CertFile: certFile, KeyFile: keyFile, CAFile: caFile, vars: fileVars{cert: CertFileVar, key: KeyFileVar, ca: CAFileVar}}
}

// fileError is a file that cannot be used, named by its variable.
type fileError struct {
	variable, path, expected string
}

func (e *fileError) Error() string {
	return fmt.Sprintf("%s=%q: expected %s", e.variable, e.path, e.expected)
}

// material is what a Source hands out: the certificate (nil for a client
// without one) and the CA pool, with the bytes they came from so that a
// change is noticed.
type material struct {
	cert  *tls.Certificate
	roots *x509.CertPool
	raw   [3][]byte
}

// read returns the files' bytes, in the order cert, key, CA; a file not
// named is nil.
func (f Files) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, v := range []struct{ name, path string }{{f.vars.cert, f.CertFile}, {f.vars.key, f.KeyFile}, {f.vars.ca, f.CAFile}} {
		if v.path == "" {
			continue
		}
		b, err := os.ReadFile(v.path)
		if err != nil {
			return raw, &fileError{variable: v.name, path: v.path, expected: "a readable PEM file (" + pathErr(err) + ")"}
		}
		raw[i] = b
	}
	return raw, nil
}

func (f Files) load() (*material, error) {
	raw, err := f.read()
	if err != nil {
		return nil, err
	}
	return f.parse(raw)
}

func (f Files) parse(raw [3][]byte) (*material, error) {
	m := &material{raw: raw}
	if raw[0] != nil || raw[1] != nil {
		cert, err := tls.X509KeyPair(raw[0], raw[1])
		if err != nil {
			if !strings.Contains(string(raw[0]), "-----BEGIN CERTIFICATE-----") {
				return nil, &fileError{variable: f.vars.cert, path: f.CertFile, expected: "a PEM certificate"}
			}
			return nil, &fileError{variable: f.vars.key, path: f.KeyFile,
				expected: "a PEM private key matching " + f.vars.cert + " (" + err.Error() + ")"}
		}
		m.cert = &cert
	}
	if raw[2] != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw[2]) {
			return nil, &fileError{variable: f.vars.ca, path: f.CAFile, expected: "a PEM file of CA certificates"}
		}
		m.roots = pool
	}
	return m, nil
}

// pathErr is an os error without the path, which the message already names.
func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
