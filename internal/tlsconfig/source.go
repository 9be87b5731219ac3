package tlsconfig

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
)

// ReloadCheckInterval is how often, at most, a Source looks at its files
// again. The check runs on a handshake, so an idle process reads nothing.
const ReloadCheckInterval = time.Second

// MinVersion is the oldest TLS version GAIA speaks.
const MinVersion = tls.VersionTLS12

// Source hands out TLS configurations built from Files, re-reading the files
// when they change: the next handshake after a rotation (at most
// ReloadCheckInterval later) uses the new certificate and CA. A rotation that
// leaves the files unusable (a key that does not match yet, a half-written
// file) keeps the previous material and is retried on the next check.
// A Source is safe for concurrent use.
type Source struct {
	files Files
	log   *zap.Logger

	mu        sync.Mutex
	cur       *material
	nextCheck time.Time
	badRaw    [3][]byte // the last contents that failed to load, logged once
}

// Open loads files into a Source; it fails when they cannot be used, with an
// error naming the variable. It returns nil, nil when files is not Enabled,
// meaning plaintext.
func Open(files Files, log *zap.Logger) (*Source, error) {
	if !files.Enabled() {
		return nil, nil
	}
	if log == nil {
		log = zap.NewNop()
	}
	m, err := files.load()
	if err != nil {
		return nil, err
	}
	s := &Source{files: files, log: log, cur: m, nextCheck: time.Now().Add(ReloadCheckInterval)}
	if m.cert != nil && m.cert.Leaf != nil {
		log.Info("tls certificate loaded", zap.String("file", files.CertFile),
			zap.String("subject", m.cert.Leaf.Subject.String()), zap.Time("not_after", m.cert.Leaf.NotAfter))
	}
	return s, nil
}

// static returns a Source that never reloads (an in-memory identity).
func static(cert *tls.Certificate, roots *x509.CertPool) *Source {
	return &Source{log: zap.NewNop(), cur: &material{cert: cert, roots: roots}, nextCheck: time.Unix(1<<62, 0)}
}

// material returns the current material, reloading it first when the files
// changed since the last look.
func (s *Source) material() *material {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Before(s.nextCheck) {
		return s.cur
	}
	s.nextCheck = now.Add(ReloadCheckInterval)
	raw, err := s.files.read()
	if err == nil && sameRaw(raw, s.cur.raw) {
		return s.cur
	}
	if err == nil {
		var m *material
		if m, err = s.files.parse(raw); err == nil {
			s.cur = m
			s.badRaw = [3][]byte{}
			fields := []zap.Field{zap.String("cert_file", s.files.CertFile), zap.String("ca_file", s.files.CAFile)}
			if m.cert != nil && m.cert.Leaf != nil {
				fields = append(fields, zap.String("subject", m.cert.Leaf.Subject.String()), zap.Time("not_after", m.cert.Leaf.NotAfter))
			}
			s.log.Info("tls files changed; reloaded", fields...)
			return s.cur
		}
	}
	if !sameRaw(raw, s.badRaw) {
		s.badRaw = raw
		s.log.Warn("tls files changed but cannot be used yet; keeping the previous certificate", zap.Error(err))
	}
	return s.cur
}

func sameRaw(a, b [3][]byte) bool {
	return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) && bytes.Equal(a[2], b[2])
}

// ServerConfig is a server's configuration: it presents the current
// certificate and does not ask clients for one. nextProtos are the ALPN
// protocols ("h2" for gRPC).
func (s *Source) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.material()
			if m.cert == nil {
				return nil, errors.New("tls: this process has no certificate to serve with")
			}
			return &tls.Config{MinVersion: MinVersion, NextProtos: nextProtos, Certificates: []tls.Certificate{*m.cert}}, nil
		},
	}
}

// MutualServerConfig is ServerConfig that also demands a client certificate
// signed by one of the current CA certificates: a client without one fails
// the handshake before it can send a byte of application data.
func (s *Source) MutualServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		NextProtos: nextProtos,
		ClientAuth: tls.RequireAndVerifyClientCert,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.material()
			if m.cert == nil || m.roots == nil {
				return nil, errors.New("tls: mutual TLS needs a certificate and a CA")
			}
			return &tls.Config{
				MinVersion:   MinVersion,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*m.cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    m.roots,
			}, nil
		},
	}
}

// ClientConfig is a client's configuration for one handshake: it verifies
// the server's certificate against the current CA certificates and
// serverName (empty: the name the caller dials), and presents this
// process's certificate if it has one and the server asks.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	m := s.material()
	cfg := &tls.Config{MinVersion: MinVersion, RootCAs: m.roots, ServerName: serverName}
	if m.cert != nil {
		cfg.Certificates = []tls.Certificate{*m.cert}
	}
	return cfg
}

// MemberClientConfig is the client side of a membership check (the Raft
// port): it presents this process's certificate and accepts a server whose
// certificate the current CA signed, whatever names it carries. Belonging is
// proved by the dedicated CA, so peers need no certificate per address.
func (s *Source) MemberClientConfig() *tls.Config {
	m := s.material()
	cfg := &tls.Config{
		MinVersion: MinVersion,
		// Verified below against the CA, without a host name.
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection checks the chain.
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyMember(cs.PeerCertificates, m.roots)
		},
	}
	if m.cert != nil {
		cfg.Certificates = []tls.Certificate{*m.cert}
	}
	return cfg
}

func verifyMember(chain []*x509.Certificate, roots *x509.CertPool) error {
	if len(chain) == 0 {
		return errors.New("tls: the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tls: the peer's certificate is not signed by the cluster CA: %w", err)
	}
	return nil
}

// Credentials are gRPC transport credentials over s: servers present the
// current certificate (ALPN h2), clients verify servers against the current
// CA. Each handshake takes a fresh configuration, so rotations apply to new
// connections.
func (s *Source) Credentials() credentials.TransportCredentials {
	return &transportCredentials{src: s}
}

type transportCredentials struct {
	src        *Source
	serverName string
}

func (c *transportCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(c.src.ClientConfig(c.serverName)).ClientHandshake(ctx, authority, conn)
}

func (c *transportCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(c.src.ServerConfig("h2")).ServerHandshake(conn)
}

func (c *transportCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c *transportCredentials) Clone() credentials.TransportCredentials {
	clone := *c
	return &clone
}

// OverrideServerName implements credentials.TransportCredentials.
//
// Deprecated: as in gRPC; use grpc.WithAuthority.
func (c *transportCredentials) OverrideServerName(name string) error {
	c.serverName = name
	return nil
}
