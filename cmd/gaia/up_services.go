package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinator "github.com/gaia-platform/gaia/services/coordinator/service"
	dashboard "github.com/gaia-platform/gaia/services/dashboard/service"
	gateway "github.com/gaia-platform/gaia/services/gateway/service"
	metrics "github.com/gaia-platform/gaia/services/metrics/service"
	taskqueue "github.com/gaia-platform/gaia/services/taskqueue/service"
)

// How `gaia up` starts, watches and stops the services it runs in-process.

// runningService is one service that `gaia up` started.
type runningService struct {
	name   string
	addr   string
	kind   string // grpc or http
	detail string
	cancel context.CancelFunc
	done   chan error
}

// url is the gateway's base URL; empty for a gRPC service.
func (s *runningService) url(secure bool) string {
	if s.kind != "http" {
		return ""
	}
	if secure {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// launcher runs services in this process and stops them in reverse order.
type launcher struct {
	log     *zap.Logger
	started []*runningService
	// failed receives the error of a service that stopped on its own.
	failed chan error
}

func newLauncher(log *zap.Logger) *launcher {
	return &launcher{log: log, failed: make(chan error, 8)}
}

// start builds a service with build and runs it until stopAll; it returns
// the address clients on this machine dial.
func (l *launcher) start(name, kind string, build func(context.Context) (process.Runner, net.Addr, string, error)) (string, error) {
	svcCtx, cancel := context.WithCancel(context.Background())
	r, addr, detail, err := build(svcCtx)
	if err != nil {
		cancel()
		return "", fmt.Errorf("start %s: %w", name, err)
	}
	s := &runningService{name: name, kind: kind, addr: dialable(addr), detail: detail, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := r.Run(svcCtx)
		if err != nil && svcCtx.Err() == nil {
			l.failed <- fmt.Errorf("%s stopped: %w", name, err)
		}
		s.done <- err
	}()
	l.started = append(l.started, s)
	return s.addr, nil
}

// stopAll stops the started services in reverse order: the edge first, the
// coordinator last.
func (l *launcher) stopAll() {
	for i := len(l.started) - 1; i >= 0; i-- {
		s := l.started[i]
		s.cancel()
		if err := <-s.done; err != nil {
			l.log.Error("service stopped with an error", zap.String("service", s.name), zap.Error(err))
		}
	}
	l.started = nil
}

// startServices starts the five services in dependency order, each dialling
// the ones before it at the addresses they actually listen on.
//
// Once the coordinator runs, the local credentials are issued through it
// (first start) and the other services present the service one.
func startServices(ctx context.Context, l *launcher, cfg upConfig, keys *auth.LocalKeys, clientTLS *tlsconfig.Source, readyTimeout time.Duration) ([]*localCredential, error) {
	log := l.log
	coordAddr, err := l.start("coordinator", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
		s, err := coordinator.New(c, cfg.coordinator, log.Named("coordinator"))
		if err != nil {
			return nil, nil, "", err
		}
		// The single-node cluster elects itself within an election timeout;
		// nothing is ready before it has.
		wctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := s.WaitForLeader(wctx); err != nil {
			_ = s.Run(canceled)
			return nil, nil, "", err
		}
		return s, s.Addr(), fmt.Sprintf("Raft %s, single node, data in %s", s.RaftAddr(), cfg.coordinator.Cluster.DataDir), nil
	})
	if err != nil {
		return nil, err
	}
	creds, err := ensureLocalCredentials(ctx, &cfg, keys, coordAddr, clientTLS, log)
	if err != nil {
		return nil, err
	}
	cfg.dashboard.CoordinatorAddr = coordAddr
	cfg.taskqueue.CoordinatorAddrs = []string{coordAddr}
	cfg.metrics.CoordinatorAddr = coordAddr
	tqAddr, err := l.start("taskqueue", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
		s, err := taskqueue.New(c, cfg.taskqueue, log.Named("taskqueue"))
		if err != nil {
			return nil, nil, "", err
		}
		return s, s.Addr(), "schema taskqueue; prometheus http://" + dialable(s.MetricsAddr()) + "/metrics", nil
	})
	if err != nil {
		return nil, err
	}
	var metricsSvc *metrics.Service
	metricsAddr, err := l.start("metrics", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
		s, err := metrics.New(c, cfg.metrics, log.Named("metrics"))
		if err != nil {
			return nil, nil, "", err
		}
		metricsSvc = s
		return s, s.Addr(), "schema metrics (events: " + s.StorageMode() + " partitions); prometheus http://" + dialable(s.PrometheusAddr()) + "/metrics", nil
	})
	if err != nil {
		return nil, err
	}
	cfg.dashboard.MetricsAddr = metricsAddr
	dashAddr, err := l.start("dashboard", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
		s, err := dashboard.New(c, cfg.dashboard, log.Named("dashboard"))
		if err != nil {
			return nil, nil, "", err
		}
		return s, s.Addr(), "schema dashboard; prometheus http://" + dialable(s.PrometheusAddr()) + "/metrics", nil
	})
	if err != nil {
		return nil, err
	}
	// The metrics service checks teachers' classrooms with the dashboard,
	// which starts after it: point it at where the dashboard listens.
	if err := metricsSvc.UseDashboard(dashAddr); err != nil {
		return nil, err
	}
	if err := assignDemoClassroom(ctx, creds, dashAddr, clientTLS); err != nil {
		return nil, err
	}
	cfg.gateway.Backends = gateway.Backends{Coordinator: coordAddr, TaskQueue: tqAddr, Metrics: metricsAddr, Dashboard: dashAddr}
	_, err = l.start("gateway", "http", func(c context.Context) (process.Runner, net.Addr, string, error) {
		s, err := gateway.New(c, cfg.gateway, log.Named("gateway"))
		if err != nil {
			return nil, nil, "", err
		}
		detail := "REST /v1, /openapi.json, /docs, /healthz, /readyz; gRPC health"
		if s.Scheme() == "https" {
			detail = "HTTPS: " + detail + " over TLS"
		}
		return s, s.Addr(), detail, nil
	})
	return creds, err
}

// waitReady polls every service until it reports SERVING: gRPC health for the
// backends, /readyz for the gateway.
func waitReady(ctx context.Context, services []*runningService, failed <-chan error, secure *upTLS) error {
	var clientTLS *tlsconfig.Source
	httpClient := http.DefaultClient
	if secure != nil {
		clientTLS = secure.client
		httpClient = &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS.ClientConfig("")}}
		defer httpClient.CloseIdleConnections()
	}
	conns := map[string]*grpc.ClientConn{}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	pending := map[string]string{}
	for _, s := range services {
		pending[s.name] = "not answering yet"
	}
	for {
		for _, s := range services {
			if _, ok := pending[s.name]; !ok {
				continue
			}
			var state string
			if s.kind == "http" {
				state = httpReady(ctx, httpClient, s.url(secure != nil)+"/readyz")
			} else {
				if conns[s.name] == nil {
					c, err := grpcclient.Dial(s.addr, grpcclient.WithTLS(clientTLS))
					if err != nil {
						return fmt.Errorf("dial %s: %w", s.name, err)
					}
					conns[s.name] = c
				}
				state = grpcHealth(ctx, conns[s.name])
			}
			if state == "SERVING" {
				delete(pending, s.name)
			} else {
				pending[s.name] = state
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case err := <-failed:
			return err
		case <-ctx.Done():
			return fmt.Errorf("services not ready in time: %v", pending)
		case <-tick.C:
		}
	}
}

func grpcHealth(ctx context.Context, conn *grpc.ClientConn) string {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err.Error()
	}
	return resp.GetStatus().String()
}

func httpReady(ctx context.Context, client *http.Client, url string) string {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return "SERVING"
}

// canceled is a context that is already done, to stop a service that was
// built but must not serve.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// dialable turns a listen address into one a client on this machine can dial:
// an unspecified host (":7001", "0.0.0.0:7001", "[::]:7001") becomes loopback.
func dialable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
