package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/buildinfo"
	"github.com/gaia-platform/gaia/internal/config"
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

type upReport struct {
	Event    string                     `json:"event"`
	Version  string                     `json:"version,omitempty"`
	Database string                     `json:"database,omitempty"`
	Services map[string]upServiceReport `json:"services,omitempty"`
	TLS      *upTLSReport               `json:"tls,omitempty"`
	// Credentials name the file of each local credential, by role
	// (admin, service, app, teacher); absent with GAIA_AUTH=off.
	Credentials map[string]string `json:"credentials,omitempty"`
	Error       string            `json:"error,omitempty"`
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

// up runs every service in one process until a signal or a failure, in
// steps: prepare (logging, TLS, the database), start the services in order,
// wait until every one is ready, announce it, and stop them all.
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
	if err := ensureDatabase(ctx, cfg, log); err != nil {
		return err
	}
	keys, err := prepareLocalKeys(&cfg)
	if err != nil {
		return err
	}

	l := newLauncher(log)
	var clientTLS *tlsconfig.Source
	if secure != nil {
		clientTLS = secure.client
	}
	creds, err := startServices(ctx, l, cfg, keys, clientTLS, readyTimeout)
	if err != nil {
		l.stopAll()
		return err
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, readyTimeout)
	err = waitReady(readyCtx, l.started, l.failed, secure)
	cancelReady()
	if err != nil {
		l.stopAll()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	announceReady(cfg, secure, l.started, creds, stdout, asJSON, log)
	defer func() { _ = os.Remove(filepath.Join(cfg.dataDir(), upStateFile)) }()

	stopHard, runErr := awaitStop(ctx, stop, l.failed, log)
	defer stopHard()
	l.stopAll()
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

// ensureDatabase creates the database every service's schema lives in when
// it does not exist yet.
func ensureDatabase(ctx context.Context, cfg upConfig, log *zap.Logger) error {
	dbCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	created, err := pg.EnsureDatabase(dbCtx, cfg.taskqueue.DatabaseURL)
	if err != nil {
		return fmt.Errorf("%w\nGAIA keeps tasks, metrics and alerts in PostgreSQL. Start it (on Debian: pg_ctlcluster 15 main start) or point DATABASE_URL at one, such as postgres://user@host:5432/gaia", err)
	}
	if created {
		log.Info("database created", zap.String("database", pg.Redact(cfg.taskqueue.DatabaseURL)))
	}
	return nil
}

// announceReady prints where everything runs (the summary, or one JSON
// line), and records it for the CLI on this machine, which reads it to know
// whether to use TLS.
func announceReady(cfg upConfig, secure *upTLS, started []*runningService, creds []*localCredential, stdout io.Writer, asJSON bool, log *zap.Logger) {
	report := upReport{Event: "ready", Version: buildinfo.Read().Version, Database: pg.Redact(cfg.taskqueue.DatabaseURL), Services: map[string]upServiceReport{}}
	state := upState{TLS: secure != nil, Addrs: map[string]string{}}
	if secure != nil {
		report.TLS = &upTLSReport{CAFile: secure.layout.CAFile(), CertsDir: secure.layout.Dir}
		var err error
		if state.CAFile, err = filepath.Abs(secure.layout.CAFile()); err != nil {
			state.CAFile = secure.layout.CAFile()
		}
	}
	if len(creds) > 0 {
		report.Credentials = map[string]string{}
		for _, c := range creds {
			report.Credentials[c.label] = c.file
		}
	}
	for _, s := range started {
		report.Services[s.name] = upServiceReport{Address: s.addr, Kind: s.kind, Detail: s.detail, URL: s.url(secure != nil)}
		state.Addrs[s.name] = s.addr
		if s.kind == "http" {
			state.Gateway = s.url(secure != nil)
		}
	}
	if err := writeUpState(cfg.dataDir(), state); err != nil {
		log.Warn("cannot record the launcher's state for the CLI", zap.Error(err))
	}
	if asJSON {
		_ = writeJSON(stdout, report)
	} else {
		printUp(stdout, report, started, creds)
	}
}

// awaitStop waits for a signal (ctx ends) or a service that stopped on its
// own, whose error it returns. From then on, until stopHard is called, a
// second Ctrl-C gives up on a graceful stop and exits at once.
func awaitStop(ctx context.Context, stopSignals context.CancelFunc, failed <-chan error, log *zap.Logger) (stopHard func(), runErr error) {
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case runErr = <-failed:
	}
	stopSignals()
	hard := make(chan os.Signal, 1)
	signal.Notify(hard, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-hard; ok {
			fmt.Fprintln(os.Stderr, "gaia: stopping at once")
			os.Exit(130)
		}
	}()
	return func() { signal.Stop(hard) }, runErr
}

func printUp(w io.Writer, r upReport, services []*runningService, creds []*localCredential) {
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
	printTeacherPage(w, gatewayAddr, creds)
	// The commands to try: with TLS, trust the CA; with credentials, present
	// the admin one.
	curl, grpcurl := "curl", "grpcurl -plaintext"
	if r.TLS != nil {
		ca := r.TLS.CAFile
		fmt.Fprintf(w, "\nEvery hop is TLS; the CA is %s (the gaia CLI here finds it by itself).\n", ca)
		curl, grpcurl = "curl --cacert "+ca, "grpcurl -cacert "+ca
	}
	if len(creds) == 0 {
		fmt.Fprintf(w, "\nGAIA_AUTH=off: every call is allowed without a credential.\n\nTry:\n  %s %s list\n  %s %s/v1/cluster/status\n\nPress Ctrl-C to stop.\n",
			grpcurl, coordAddr, curl, gatewayAddr)
		return
	}
	if r.TLS == nil {
		fmt.Fprintf(w, "\nPlaintext gRPC and HTTP (the Raft port is mutual TLS); gaia up --tls for TLS on every hop.\n")
	}
	fmt.Fprintf(w, "\nCredentials (kept in %s; the gaia CLI on this machine presents the admin one by itself):\n", filepath.Dir(creds[0].file))
	var adminFile string
	for _, c := range creds {
		if c.label == "service" {
			continue
		}
		if c.label == "admin" {
			adminFile = c.file
		}
		fmt.Fprintf(w, "  %-8s %s  (%s)\n    %s\n", c.label, c.file, c.scope, c.token)
	}
	fmt.Fprintf(w, "\nTry:\n  gaia cluster status\n  %s -H \"Authorization: Bearer $(cat %s)\" %s/v1/cluster/status\n  %s -H \"authorization: Bearer $(cat %s)\" %s gaia.coordinator.v1.ClusterService/GetClusterStatus\n  %s %s/readyz\n\nPress Ctrl-C to stop.\n",
		curl, adminFile, gatewayAddr, grpcurl, adminFile, coordAddr, curl, gatewayAddr)
}

// printTeacherPage says where the teacher page is. With credentials, the
// link carries the demo teacher's token in its fragment ("#token=…"), which
// the browser never sends to the server: opening it signs the page in, and
// the page then removes it from the address bar.
func printTeacherPage(w io.Writer, gatewayAddr string, creds []*localCredential) {
	for _, c := range creds {
		if c.label == "teacher" && c.token != "" {
			fmt.Fprintf(w, "\nTeacher dashboard, signed in as the demo teacher (%s):\n  %s/#token=%s\n"+
				"Another teacher signs in on the page with their own credential (gaia auth issue --role teacher --teacher TEACHER_ID);\n"+
				"an administrator gives them a classroom: gaia teacher assign --teacher TEACHER_ID --classroom CLASSROOM_ID\n",
				c.req.GetTeacherId(), gatewayAddr, c.token)
			return
		}
	}
	fmt.Fprintf(w, "\nTeacher dashboard: %s/?teacher=TEACHER_ID (give a teacher a classroom: gaia teacher assign --teacher TEACHER_ID --classroom CLASSROOM_ID)\n", gatewayAddr)
}
