package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// pki writes certificates of in-memory CAs into a folder.
type pki struct {
	t   *testing.T
	dir string
}

func newAuthority(t *testing.T, name string) *tlsconfig.Authority {
	t.Helper()
	a, err := tlsconfig.NewAuthority(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// write issues a certificate for cn from a into <name>.crt/.key and puts a's
// certificate in <name>-ca.crt; it returns the files.
func (p pki) write(name string, a *tlsconfig.Authority, cn string) tlsconfig.Files {
	p.t.Helper()
	cert, key, err := a.Issue(cn, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	f := tlsconfig.ServiceFiles(filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key"), filepath.Join(p.dir, name+"-ca.crt"))
	writeAtomically(p.t, f.CertFile, cert)
	writeAtomically(p.t, f.KeyFile, key)
	writeAtomically(p.t, f.CAFile, a.CertPEM())
	return f
}

func writeAtomically(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, f tlsconfig.Files) *tlsconfig.Source {
	t.Helper()
	s, err := tlsconfig.Open(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serve accepts TLS connections with cfg on loopback and completes each
// handshake, until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if tc, ok := c.(*tls.Conn); ok && tc.Handshake() == nil {
					_, _ = tc.Write([]byte{1})
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake connects with cfg, reads the server's one byte (which fails
// when the server refused the client's certificate) and returns the
// server's certificate.
func handshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRotatedCertificateIsServedToNewConnections rotates a server's
// certificate files: new handshakes get the new certificate without a
// restart, and a rotation that leaves a mismatched key keeps the old one.
func TestRotatedCertificateIsServedToNewConnections(t *testing.T) {
	p := pki{t, t.TempDir()}
	ca := newAuthority(t, "ca")
	files := p.write("server", ca, "first")
	core, logs := observer.New(zap.InfoLevel)
	src, err := tlsconfig.Open(files, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, src.ServerConfig())
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}

	cert, err := handshake(addr, client)
	if err != nil || cert.Subject.CommonName != "first" {
		t.Fatalf("first handshake: %v, %v", cert, err)
	}

	// A half-done rotation: a new certificate with the old key. It must not
	// break the server.
	newCert, newKey, err := ca.Issue("second", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, files.CertFile, newCert)
	eventually(t, "the half rotation is noticed", func() bool {
		_, _ = handshake(addr, client)
		return logs.FilterMessageSnippet("cannot be used yet").Len() > 0
	})
	if cert, err := handshake(addr, client); err != nil || cert.Subject.CommonName != "first" {
		t.Fatalf("during a half-done rotation: %v, %v; want the first certificate still", cert, err)
	}

	writeAtomically(t, files.KeyFile, newKey)
	eventually(t, "the rotated certificate is served", func() bool {
		cert, err := handshake(addr, client)
		return err == nil && cert.Subject.CommonName == "second"
	})
}

// TestRotatedCAIsTrustedByNewConnections rotates a client's CA file: a server
// of the new CA, refused before, is accepted afterwards.
func TestRotatedCAIsTrustedByNewConnections(t *testing.T) {
	p := pki{t, t.TempDir()}
	oldCA, newCA := newAuthority(t, "old"), newAuthority(t, "new")
	server := open(t, p.write("server", newCA, "server"))
	addr := serve(t, server.ServerConfig())
	clientFiles := p.write("client", oldCA, "client")
	client := open(t, clientFiles)

	if _, err := handshake(addr, client.ClientConfig("127.0.0.1")); err == nil {
		t.Fatal("a client trusting the old CA accepted the new CA's server")
	}
	writeAtomically(t, clientFiles.CAFile, newCA.CertPEM())
	eventually(t, "the rotated CA is trusted", func() bool {
		_, err := handshake(addr, client.ClientConfig("127.0.0.1"))
		return err == nil
	})
}

// TestMutualTLSRefusesPeersWithoutACertificateOfTheCA is the Raft port's
// check: no certificate, or one of another CA, fails the handshake; a
// member's passes; and a member of a CA rotated out is refused afterwards.
func TestMutualTLSRefusesPeersWithoutACertificateOfTheCA(t *testing.T) {
	p := pki{t, t.TempDir()}
	ca, other := newAuthority(t, "cluster"), newAuthority(t, "other")
	serverFiles := p.write("server", ca, "node-1")
	server := open(t, serverFiles)
	addr := serve(t, server.MutualServerConfig())
	member := open(t, p.write("member", ca, "node-2"))
	stranger := open(t, p.write("stranger", other, "intruder"))

	if _, err := handshake(addr, member.MemberClientConfig()); err != nil {
		t.Fatalf("a member was refused: %v", err)
	}
	noCert := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a stranger trusts anyone
	if _, err := handshake(addr, noCert); err == nil {
		t.Error("a peer without a certificate was accepted")
	}
	strangerCfg := stranger.ClientConfig("")
	strangerCfg.InsecureSkipVerify = true
	if _, err := handshake(addr, strangerCfg); err == nil {
		t.Error("a peer with another CA's certificate was accepted")
	}
	// The member refuses a server of another CA, too.
	if _, err := handshake(serve(t, stranger.ServerConfig()), member.MemberClientConfig()); err == nil {
		t.Error("a member accepted a server of another CA")
	}

	// Rotate the cluster to the other CA: the old member is refused.
	newServer := p.write("server-next", other, "node-1")
	for _, f := range [][2]string{{newServer.CertFile, serverFiles.CertFile}, {newServer.KeyFile, serverFiles.KeyFile}, {newServer.CAFile, serverFiles.CAFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		writeAtomically(t, f[1], b)
	}
	eventually(t, "the old CA's member is refused after the rotation", func() bool {
		_, err := handshake(addr, member.MemberClientConfig())
		return err != nil
	})
	if _, err := handshake(addr, strangerCfg); err != nil {
		t.Errorf("a member of the new CA was refused: %v", err)
	}
}

// TestLoadNamesTheVariable checks start-up validation: each problem names
// the variable to fix.
func TestLoadNamesTheVariable(t *testing.T) {
	p := pki{t, t.TempDir()}
	ca := newAuthority(t, "ca")
	good := p.write("good", ca, "good")
	other := p.write("other", ca, "other")
	notPEM := filepath.Join(p.dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		prefix  string
		wantVar string
		wantIn  string
		enabled bool
	}{
		{name: "unset is plaintext", env: map[string]string{}},
		{name: "all three", env: map[string]string{"TLS_CERT_FILE": good.CertFile, "TLS_KEY_FILE": good.KeyFile, "TLS_CA_FILE": good.CAFile}, enabled: true},
		{name: "a key without its certificate", env: map[string]string{"TLS_KEY_FILE": good.KeyFile, "TLS_CA_FILE": good.CAFile},
			wantVar: "TLS_CERT_FILE", wantIn: "go together", enabled: true},
		{name: "no CA", env: map[string]string{"TLS_CERT_FILE": good.CertFile, "TLS_KEY_FILE": good.KeyFile},
			wantVar: "TLS_CA_FILE", wantIn: "go together", enabled: true},
		{name: "missing file", env: map[string]string{"TLS_CERT_FILE": filepath.Join(p.dir, "nope.crt"), "TLS_KEY_FILE": good.KeyFile, "TLS_CA_FILE": good.CAFile},
			wantVar: "TLS_CERT_FILE", wantIn: "no such file", enabled: true},
		{name: "a key of another certificate", env: map[string]string{"TLS_CERT_FILE": good.CertFile, "TLS_KEY_FILE": other.KeyFile, "TLS_CA_FILE": good.CAFile},
			wantVar: "TLS_KEY_FILE", wantIn: "matching TLS_CERT_FILE", enabled: true},
		{name: "a certificate that is not PEM", env: map[string]string{"TLS_CERT_FILE": notPEM, "TLS_KEY_FILE": good.KeyFile, "TLS_CA_FILE": good.CAFile},
			wantVar: "TLS_CERT_FILE", wantIn: "PEM certificate", enabled: true},
		{name: "a CA that is not PEM", env: map[string]string{"TLS_CERT_FILE": good.CertFile, "TLS_KEY_FILE": good.KeyFile, "TLS_CA_FILE": notPEM},
			wantVar: "TLS_CA_FILE", wantIn: "CA certificates", enabled: true},
		{name: "prefixed variables are named with the prefix", prefix: "CLUSTER_",
			env:     map[string]string{"CLUSTER_TLS_CERT_FILE": good.CertFile, "CLUSTER_TLS_KEY_FILE": other.KeyFile, "CLUSTER_TLS_CA_FILE": good.CAFile},
			wantVar: "CLUSTER_TLS_KEY_FILE", wantIn: "matching CLUSTER_TLS_CERT_FILE", enabled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := config.NewLoader(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			f := tlsconfig.Load(l, tt.prefix, tlsconfig.Files{})
			if f.Enabled() != tt.enabled {
				t.Errorf("Enabled = %v, want %v", f.Enabled(), tt.enabled)
			}
			err := l.Err()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Err = %v, want none", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tt.wantVar || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("Err = %v, want one naming %s and saying %q", err, tt.wantVar, tt.wantIn)
			}
		})
	}
}

// TestClusterFilesDefaultToTheServiceFiles: CLUSTER_TLS_* unset take the
// TLS_* paths.
func TestClusterFilesDefaultToTheServiceFiles(t *testing.T) {
	p := pki{t, t.TempDir()}
	good := p.write("good", newAuthority(t, "ca"), "good")
	env := map[string]string{"TLS_CERT_FILE": good.CertFile, "TLS_KEY_FILE": good.KeyFile, "TLS_CA_FILE": good.CAFile}
	l := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	svc := tlsconfig.Load(l, "", tlsconfig.Files{})
	cluster := tlsconfig.Load(l, "CLUSTER_", svc)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if cluster.CertFile != good.CertFile || cluster.KeyFile != good.KeyFile || cluster.CAFile != good.CAFile {
		t.Errorf("cluster files = %+v, want the service files", cluster)
	}
}

// TestDevLayoutKeepsTheClusterCAApart: a service certificate of `gaia certs
// dev` does not verify against the cluster CA, and the keys are private.
func TestDevLayoutKeepsTheClusterCAApart(t *testing.T) {
	d, err := tlsconfig.WriteDev(t.TempDir(), []string{"gaia.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Exists() {
		t.Fatal("layout incomplete after WriteDev")
	}
	member, svc := open(t, d.ClusterMember()), open(t, d.Service("taskqueue"))
	addr := serve(t, member.MutualServerConfig())
	if _, err := handshake(addr, member.MemberClientConfig()); err != nil {
		t.Fatalf("a member was refused: %v", err)
	}
	cfg := svc.ClientConfig("")
	cfg.InsecureSkipVerify = true
	if _, err := handshake(addr, cfg); err == nil {
		t.Error("a service certificate was accepted on the cluster port")
	}
	// Service certificates carry the extra host and the service name.
	gw := serve(t, open(t, d.Service("gateway")).ServerConfig())
	for _, name := range []string{"gaia.example", "gateway", "localhost", "127.0.0.1"} {
		if _, err := handshake(gw, svc.ClientConfig(name)); err != nil {
			t.Errorf("verify the gateway as %s: %v", name, err)
		}
	}
	info, err := os.Stat(d.Service("gateway").KeyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
}
