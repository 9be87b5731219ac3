package process

import (
	"fmt"
	"net"
)

// Listeners are a service's two TCP ports: gRPC, and Prometheus metrics.
type Listeners struct {
	GRPC    net.Listener
	Metrics net.Listener
}

// Listen opens both, the gRPC one first. When the second cannot be opened
// the first is closed again; the error names the address.
func Listen(grpcAddr, metricsAddr string) (*Listeners, error) {
	grpcLis, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for grpc on %s: %w", grpcAddr, err)
	}
	metricsLis, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		_ = grpcLis.Close()
		return nil, fmt.Errorf("listen for metrics on %s: %w", metricsAddr, err)
	}
	return &Listeners{GRPC: grpcLis, Metrics: metricsLis}, nil
}

// Close closes both, for a service whose construction failed after Listen
// (a running service's servers close their own when they stop).
func (l *Listeners) Close() {
	_ = l.GRPC.Close()
	_ = l.Metrics.Close()
}
