package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// DialFunc opens a TCP connection to addr (host:port), resolving the host
// itself; nil means net.Dialer.
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// nameStreamLayer is raft's TCP stream layer, except that the address it
// advertises is kept as written, host name included. raft's own TCP layer
// needs an IP, so a node advertising a DNS name (a StatefulSet pod's
// coordinator-0.coordinator-raft) would enter the configuration under the
// IP the name had at start-up, which a rescheduled pod no longer has. Here
// the configuration holds the name and every dial resolves it afresh.
type nameStreamLayer struct {
	net.Listener
	advertise serverAddr
	dial      DialFunc
}

// serverAddr is a net.Addr that is a host:port string, name or IP.
type serverAddr string

func (a serverAddr) Network() string { return "tcp" }
func (a serverAddr) String() string  { return string(a) }

func newNameStreamLayer(bindAddr, advertise string, dial DialFunc) (*nameStreamLayer, error) {
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil || host == "" || port == "" || port == "0" {
			return nil, fmt.Errorf("raft advertise address %q: expected host:port with a port", advertise)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return nil, errNotAdvertisable
		}
	}
	lis, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, err
	}
	if advertise == "" {
		tcp, _ := lis.Addr().(*net.TCPAddr)
		if tcp == nil || tcp.IP == nil || tcp.IP.IsUnspecified() {
			_ = lis.Close()
			return nil, errNotAdvertisable
		}
		advertise = tcp.String()
	}
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	return &nameStreamLayer{Listener: lis, advertise: serverAddr(advertise), dial: dial}, nil
}

var errNotAdvertisable = errors.New("local bind address is not advertisable")

// Addr is the advertised address; raft records it in the configuration.
func (s *nameStreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer, resolving its name now.
func (s *nameStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dial(ctx, string(address))
}
