package raftnode

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// handshakeTimeout bounds a TLS handshake on the Raft port, so that a peer
// that connects and says nothing does not hold a goroutine for good.
const handshakeTimeout = 10 * time.Second

// tlsStreamLayer is hashicorp/raft's StreamLayer over mutual TLS: the
// listener demands a client certificate signed by the cluster CA, and the
// dialer presents this node's certificate and accepts only a server whose
// certificate the same CA signed. A process without a member's certificate
// fails the handshake before raft reads a byte from it, so it can neither
// send an RPC (AppendEntries, RequestVote, InstallSnapshot…) nor receive one.
// Underneath is the name stream layer: the advertised address may be a DNS
// name, resolved at every dial.
type tlsStreamLayer struct {
	*nameStreamLayer // plain TCP; each accepted conn is wrapped
	src              *tlsconfig.Source
}

// NewTLSStreamLayer listens on bind for raft.NewNetworkTransportWithConfig.
// advertise may be nil: the listener's address is then advertised, which
// must not be an unspecified one.
func NewTLSStreamLayer(bind string, advertise net.Addr, src *tlsconfig.Source) (raft.StreamLayer, error) {
	adv := ""
	if advertise != nil {
		adv = advertise.String()
	}
	return newTLSStreamLayer(bind, adv, nil, src)
}

func newTLSStreamLayer(bind, advertise string, dial DialFunc, src *tlsconfig.Source) (*tlsStreamLayer, error) {
	inner, err := newNameStreamLayer(bind, advertise, dial)
	if err != nil {
		return nil, err
	}
	return &tlsStreamLayer{nameStreamLayer: inner, src: src}, nil
}

// Accept returns the next connection; its handshake runs on first use, in the
// connection's own goroutine, so a slow or hostile peer never stalls Accept.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.nameStreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeFirst{Conn: tls.Server(c, l.src.MutualServerConfig())}, nil
}

// Dial connects to a peer and completes the handshake within timeout.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := l.dial(ctx, string(address))
	if err != nil {
		return nil, fmt.Errorf("raft mutual tls to %s: %w", address, err)
	}
	tc := tls.Client(c, l.src.MemberClientConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft mutual tls to %s: %w", address, err)
	}
	return tc, nil
}

// handshakeFirst is a server-side TLS connection that completes its
// handshake, with a deadline, before the first read or write.
type handshakeFirst struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *handshakeFirst) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if err := c.HandshakeContext(ctx); err != nil {
			c.err = fmt.Errorf("raft peer %s refused: %w", c.RemoteAddr(), err)
			_ = c.Close()
		}
	})
	return c.err
}

func (c *handshakeFirst) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *handshakeFirst) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
