package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
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
type tlsStreamLayer struct {
	ln        net.Listener // plain TCP; each accepted conn is wrapped
	advertise net.Addr
	src       *tlsconfig.Source
}

// NewTLSStreamLayer listens on bind for raft.NewNetworkTransportWithConfig.
// advertise may be nil: the listener's address is then advertised, which
// must not be an unspecified one.
func NewTLSStreamLayer(bind string, advertise net.Addr, src *tlsconfig.Source) (raft.StreamLayer, error) {
	return newTLSStreamLayer(bind, advertise, src)
}

func newTLSStreamLayer(bind string, advertise net.Addr, src *tlsconfig.Source) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	l := &tlsStreamLayer{ln: ln, advertise: advertise, src: src}
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, errNotAdvertisable
	}
	return l, nil
}

var errNotAdvertisable = errors.New("local bind address is not advertisable")

// Accept returns the next connection; its handshake runs on first use, in the
// connection's own goroutine, so a slow or hostile peer never stalls Accept.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeFirst{Conn: tls.Server(c, l.src.MutualServerConfig())}, nil
}

func (l *tlsStreamLayer) Close() error { return l.ln.Close() }

func (l *tlsStreamLayer) Addr() net.Addr {
	if l.advertise != nil {
		return l.advertise
	}
	return l.ln.Addr()
}

// Dial connects to a peer and completes the handshake within timeout.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: l.src.MemberClientConfig()}
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft mutual tls to %s: %w", address, err)
	}
	return c, nil
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
