package service

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/grpcclient"
)

// Resolver looks up host names. *net.Resolver is one; tests pass their own to
// stand in for a cluster's DNS (pod names that come, go and move).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// dial opens a TCP connection to addr, resolving its host with the node's
// resolver at every attempt, so a peer that moved is found where it is now.
func (s *Service) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	if net.ParseIP(host) != nil {
		return d.DialContext(ctx, "tcp", addr)
	}
	ips, err := s.resolver.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))
}

// dialGRPC is grpcclient.Dial with the node's gRPC TLS (if any), through
// the node's resolver.
func (s *Service) dialGRPC(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{grpcclient.WithTLS(s.tls)}, opts...)
	if !s.customResolver {
		return grpcclient.Dial(addr, opts...)
	}
	return grpcclient.Dial("passthrough:///"+addr, append([]grpc.DialOption{grpc.WithContextDialer(s.dial)}, opts...)...)
}

// resolvable reports whether host resolves now: false only for a definite
// "no such host", never for a DNS server that failed to answer.
func (s *Service) resolvable(ctx context.Context, host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	_, err := s.resolver.LookupHost(ctx, host)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false
	}
	return true
}
