package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gaia-platform/gaia/internal/buildinfo"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/logging"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinator "github.com/gaia-platform/gaia/services/coordinator/service"
	dashboard "github.com/gaia-platform/gaia/services/dashboard/service"
	gateway "github.com/gaia-platform/gaia/services/gateway/service"
	metrics "github.com/gaia-platform/gaia/services/metrics/service"
	taskqueue "github.com/gaia-platform/gaia/services/taskqueue/service"
)

// upConfig is every service's configuration as `gaia up` runs them together.
type upConfig struct {
	common      process.Common
	coordinator coordinator.Config
	taskqueue   taskqueue.Config
	metrics     metrics.Config
	dashboard   dashboard.Config
	gateway     gateway.Config
	// tls serves every hop over TLS with the development PKI in certsDir.
	tls      bool
	certsDir string
}

// dataDir is the folder of the launcher's local state, the parent of the
// Raft data folder (data by default); the CLI looks there too.
func (c upConfig) dataDir() string {
	return filepath.Dir(filepath.Clean(c.coordinator.Cluster.DataDir))
}

func loadUpConfig(lookup func(string) (string, bool)) (upConfig, error) {
	l := config.NewLoader(lookup)
	c := upConfig{
		common:      process.LoadCommon(l, "console"),
		coordinator: coordinator.LoadConfig(l),
		taskqueue:   taskqueue.LoadConfig(l),
		metrics:     metrics.LoadConfig(l),
		dashboard:   dashboard.LoadConfig(l),
		gateway:     gateway.LoadConfig(l),
	}
	if err := l.Err(); err != nil {
		return c, configError{err}
	}
	// One machine, one node: the coordinator is a standalone single-voter
	// cluster that bootstraps itself on first start.
	c.coordinator.Cluster.Enabled = false
	c.coordinator.Cluster.Bootstrap = true
	c.coordinator.Cluster.DiscoveryNodes = nil
	return c, nil
}

// runningService is one service that `gaia up` started.
type runningService struct {
	name   string
	addr   string
	kind   string // grpc or http
	detail string
	cancel context.CancelFunc
	done   chan error
}

type upReport struct {
	Event    string                     `json:"event"`
	Version  string                     `json:"version,omitempty"`
	Database string                     `json:"database,omitempty"`
	Services map[string]upServiceReport `json:"services,omitempty"`
	TLS      *upTLSReport               `json:"tls,omitempty"`
	Error    string                     `json:"error,omitempty"`
}

type upServiceReport struct {
	Address string `json:"address"`
	Kind    string `json:"kind"`
	// URL is the gateway's base URL (http:// or https://).
	URL    string `json:"url,omitempty"`
	Detail string `json:"detail,omitempty"`
}

type upTLSReport struct {
	CAFile   string `json:"ca_file"`
	CertsDir string `json:"certs_dir"`
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

// upTLS is how `gaia up --tls` secures every hop: the development PKI in
// layout, and a client of its CA for the readiness checks.
type upTLS struct {
	layout tlsconfig.DevLayout
	client *tlsconfig.Source
}

// useTLS points every service at its certificate in the development PKI in
// dir, making the PKI first when it is missing.
func (c *upConfig) useTLS(dir string, log *zap.Logger) (*upTLS, error) {
	layout, made, err := tlsconfig.EnsureDev(dir)
	if err != nil {
		return nil, err
	}
	if made {
		log.Info("made a development CA and certificates", zap.String("dir", dir))
	}
	c.coordinator.TLS = layout.Service("coordinator")
	c.coordinator.Cluster.TLS = layout.ClusterMember()
	c.taskqueue.TLS = layout.Service("taskqueue")
	c.metrics.TLS = layout.Service("metrics")
	c.dashboard.TLS = layout.Service("dashboard")
	c.gateway.TLS = layout.Service("gateway")
	client, err := tlsconfig.Open(tlsconfig.ClientFiles(layout.CAFile()), nil)
	if err != nil {
		return nil, err
	}
	return &upTLS{layout: layout, client: client}, nil
}

func newUpCommand() *cobra.Command {
	var asJSON, withTLS bool
	var certsDir string
	var readyTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole system on this machine: all five services, a single-node Raft and PostgreSQL",
		Long: `Starts the coordinator (a single-node Raft cluster in CLUSTER_DATA_DIR, default
data/raft), the task queue, metrics, dashboard and the REST gateway, each on its
own port over real gRPC, against the PostgreSQL in DATABASE_URL (default
` + pg.DefaultURL + `). The database is created if it does not
exist and every schema is migrated. Every variable in the README applies; the
services dial each other at the addresses they actually listen on.

The Raft port is always mutual TLS. With --tls every other hop is TLS too:
gRPC between the services and from clients, and HTTPS at the gateway, with
the development certificates in --certs (made when missing, as 'gaia certs
dev' does). The gaia CLI on this machine finds the CA by itself; other
clients trust data/certs/ca.crt. Ctrl-C stops everything.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadUpConfig(os.LookupEnv)
			if err != nil {
				return err
			}
			if !withTLS && cmd.Flags().Changed("certs") {
				return usageError{fmt.Errorf("--certs needs --tls")}
			}
			if certsDir == "" {
				certsDir = filepath.Join(cfg.dataDir(), "certs")
			}
			cfg.certsDir, cfg.tls = certsDir, withTLS
			return up(cmd.Context(), cfg, cmd.OutOrStdout(), asJSON, readyTimeout)
		},
	}
	cmd.Flags().BoolVar(&withTLS, "tls", false, "serve every gRPC port and the gateway over TLS with development certificates")
	cmd.Flags().StringVar(&certsDir, "certs", "", "with --tls, the folder of the development certificates (default data/certs)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line (ready, stopped) instead of the summary")
	cmd.Flags().DurationVar(&readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for every service to report SERVING")
	return cmd
}

func up(parent context.Context, cfg upConfig, stdout io.Writer, asJSON bool, readyTimeout time.Duration) error {
	log, err := logging.New(cfg.common.LogLevel, cfg.common.LogFormat)
	if err != nil {
		return configError{err}
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var secure *upTLS
	if cfg.tls {
		if secure, err = cfg.useTLS(cfg.certsDir, log); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}

	dbCtx, cancelDB := context.WithTimeout(ctx, 15*time.Second)
	created, err := pg.EnsureDatabase(dbCtx, cfg.taskqueue.DatabaseURL)
	cancelDB()
	if err != nil {
		return fmt.Errorf("%w\nGAIA keeps tasks, metrics and alerts in PostgreSQL. Start it (on Debian: pg_ctlcluster 15 main start) or point DATABASE_URL at one, such as postgres://user@host:5432/gaia", err)
	}
	if created {
		log.Info("database created", zap.String("database", pg.Redact(cfg.taskqueue.DatabaseURL)))
	}

	var started []*runningService
	stopAll := func() {
		// Stop in reverse order: the edge first, the coordinator last.
		for i := len(started) - 1; i >= 0; i-- {
			s := started[i]
			s.cancel()
			if err := <-s.done; err != nil {
				log.Error("service stopped with an error", zap.String("service", s.name), zap.Error(err))
			}
		}
	}
	failed := make(chan error, 8)
	start := func(name, kind string, build func(context.Context) (process.Runner, net.Addr, string, error)) (string, error) {
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
				failed <- fmt.Errorf("%s stopped: %w", name, err)
			}
			s.done <- err
		}()
		started = append(started, s)
		return s.addr, nil
	}

	err = func() error {
		coordAddr, err := start("coordinator", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
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
			return err
		}
		cfg.taskqueue.CoordinatorAddrs = []string{coordAddr}
		cfg.metrics.CoordinatorAddr = coordAddr
		tqAddr, err := start("taskqueue", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
			s, err := taskqueue.New(c, cfg.taskqueue, log.Named("taskqueue"))
			if err != nil {
				return nil, nil, "", err
			}
			return s, s.Addr(), "schema taskqueue; prometheus http://" + dialable(s.MetricsAddr()) + "/metrics", nil
		})
		if err != nil {
			return err
		}
		metricsAddr, err := start("metrics", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
			s, err := metrics.New(c, cfg.metrics, log.Named("metrics"))
			if err != nil {
				return nil, nil, "", err
			}
			return s, s.Addr(), "schema metrics (events: " + s.StorageMode() + " partitions); prometheus http://" + dialable(s.PrometheusAddr()) + "/metrics", nil
		})
		if err != nil {
			return err
		}
		cfg.dashboard.MetricsAddr = metricsAddr
		dashAddr, err := start("dashboard", "grpc", func(c context.Context) (process.Runner, net.Addr, string, error) {
			s, err := dashboard.New(c, cfg.dashboard, log.Named("dashboard"))
			if err != nil {
				return nil, nil, "", err
			}
			return s, s.Addr(), "schema dashboard", nil
		})
		if err != nil {
			return err
		}
		cfg.gateway.Backends = gateway.Backends{Coordinator: coordAddr, TaskQueue: tqAddr, Metrics: metricsAddr, Dashboard: dashAddr}
		_, err = start("gateway", "http", func(c context.Context) (process.Runner, net.Addr, string, error) {
			s, err := gateway.New(c, cfg.gateway, log.Named("gateway"))
			if err != nil {
				return nil, nil, "", err
			}
			detail := "REST /v1, /openapi.json, /healthz, /readyz; gRPC health"
			if s.Scheme() == "https" {
				detail = "HTTPS: " + detail + " over TLS"
			}
			return s, s.Addr(), detail, nil
		})
		return err
	}()
	if err != nil {
		stopAll()
		return err
	}

	readyCtx, cancelReady := context.WithTimeout(ctx, readyTimeout)
	err = waitReady(readyCtx, started, failed, secure)
	cancelReady()
	if err != nil {
		stopAll()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	report := upReport{Event: "ready", Version: buildinfo.Read().Version, Database: pg.Redact(cfg.taskqueue.DatabaseURL), Services: map[string]upServiceReport{}}
	state := upState{TLS: secure != nil, Addrs: map[string]string{}}
	if secure != nil {
		report.TLS = &upTLSReport{CAFile: secure.layout.CAFile(), CertsDir: secure.layout.Dir}
		if state.CAFile, err = filepath.Abs(secure.layout.CAFile()); err != nil {
			state.CAFile = secure.layout.CAFile()
		}
	}
	for _, s := range started {
		report.Services[s.name] = upServiceReport{Address: s.addr, Kind: s.kind, Detail: s.detail, URL: s.url(secure != nil)}
		state.Addrs[s.name] = s.addr
		if s.kind == "http" {
			state.Gateway = s.url(secure != nil)
		}
	}
	// The CLI on this machine reads this to know whether to use TLS.
	if err := writeUpState(cfg.dataDir(), state); err != nil {
		log.Warn("cannot record the launcher's state for the CLI", zap.Error(err))
	}
	defer func() { _ = os.Remove(filepath.Join(cfg.dataDir(), upStateFile)) }()
	if asJSON {
		_ = writeJSON(stdout, report)
	} else {
		printUp(stdout, report, started)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case runErr = <-failed:
	}
	// A second Ctrl-C gives up on a graceful stop.
	stop()
	hard := make(chan os.Signal, 1)
	signal.Notify(hard, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(hard)
	go func() {
		if _, ok := <-hard; ok {
			fmt.Fprintln(os.Stderr, "gaia: stopping at once")
			os.Exit(130)
		}
	}()
	stopAll()
	if asJSON {
		stopped := upReport{Event: "stopped"}
		if runErr != nil {
			stopped.Error = runErr.Error()
		}
		_ = writeJSON(stdout, stopped)
	} else {
		fmt.Fprintln(stdout, "GAIA stopped.")
	}
	return runErr
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

func printUp(w io.Writer, r upReport, services []*runningService) {
	fmt.Fprintf(w, "GAIA %s is up.\n\n", r.Version)
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	var gatewayAddr, coordAddr string
	for _, s := range services {
		addr := s.addr
		if s.kind == "http" {
			addr = s.url(r.TLS != nil)
			gatewayAddr = addr
		}
		if s.name == "coordinator" {
			coordAddr = s.addr
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.name, addr, s.detail)
	}
	fmt.Fprintf(tw, "  postgresql\t%s\tschemas taskqueue, metrics, dashboard migrated\n", r.Database)
	_ = tw.Flush()
	if r.TLS != nil {
		ca := r.TLS.CAFile
		fmt.Fprintf(w, "\nEvery hop is TLS; the CA is %s (the gaia CLI here finds it by itself).\n", ca)
		fmt.Fprintf(w, "\nTry:\n  grpcurl -cacert %s %s list\n  curl --cacert %s %s/v1/cluster/status\n  curl --cacert %s %s/readyz\n\nPress Ctrl-C to stop.\n",
			ca, coordAddr, ca, gatewayAddr, ca, gatewayAddr)
		return
	}
	fmt.Fprintf(w, "\nTry:\n  grpcurl -plaintext %s list\n  curl %s/v1/cluster/status\n  curl %s/readyz\n\nPress Ctrl-C to stop.\n", coordAddr, gatewayAddr, gatewayAddr)
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
