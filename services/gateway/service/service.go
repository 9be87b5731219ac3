// Package service is the gateway's composition root: it dials the four
// backends, mounts the REST routes, the OpenAPI document, the API reference
// page (/docs) and the health
// endpoints, and serves them (with the gateway's own gRPC health and reflection
// on the same port, over h2c) until its context ends. It is public within the
// module so that `gaia up` can run the gateway in-process.
package service

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/internal/buildinfo"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/telemetry"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	gaiaproto "github.com/gaia-platform/gaia/proto"
	"github.com/gaia-platform/gaia/services/gateway/internal/apidoc"
	"github.com/gaia-platform/gaia/services/gateway/internal/readiness"
	"github.com/gaia-platform/gaia/services/gateway/internal/rest"
	"github.com/gaia-platform/gaia/services/gateway/internal/teacherpage"
)

// Service is a built gateway, listening but not yet serving.
type Service struct {
	cfg   Config
	log   *zap.Logger
	lis   net.Listener
	http  *http.Server
	grpc  *grpcserver.Server
	conns []*grpc.ClientConn
	tls   *tlsconfig.Source // nil: plain HTTP
	// limiter and verifier count REST calls per credential.
	limiter  *auth.Limiter
	verifier *auth.Verifier
	// base is the context of every request; cancelling it ends REST streams
	// when the gateway shuts down.
	base       context.Context
	cancelBase context.CancelFunc

	metrics    *requestMetrics
	metricsLis net.Listener
	registry   *prometheus.Registry
}

// New dials the backends (lazily: a backend that is down makes /readyz fail,
// not start-up), opens the listener and builds the handlers.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Service, error) {
	serverTLS, err := tlsconfig.Open(cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	cfg.HTTP.defaults()
	s := &Service{cfg: cfg, log: log, tls: serverTLS, limiter: auth.NewLimiter(cfg.Auth.Limits)}
	if cfg.Auth.PublicKeysFile != "" {
		keys, err := auth.ReadPublicKeys(cfg.Auth.PublicKeysFile)
		if err != nil {
			return nil, fmt.Errorf("AUTH_PUBLIC_KEYS_FILE: %w", err)
		}
		s.verifier = auth.NewVerifier(keys, nil)
	} else {
		log.Info("AUTH_PUBLIC_KEYS_FILE is not set: the gateway rate-limits per client address, not per credential")
	}
	dial := func(addr string) (*grpc.ClientConn, error) {
		conn, err := grpcclient.Dial(addr, grpcclient.WithTLS(serverTLS))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		s.conns = append(s.conns, conn)
		return conn, nil
	}
	var conns rest.Conns
	for _, b := range []struct {
		addr string
		conn **grpc.ClientConn
	}{
		{cfg.Backends.Coordinator, &conns.Coordinator},
		{cfg.Backends.TaskQueue, &conns.TaskQueue},
		{cfg.Backends.Metrics, &conns.Metrics},
		{cfg.Backends.Dashboard, &conns.Dashboard},
	} {
		if *b.conn, err = dial(b.addr); err != nil {
			s.closeConns()
			return nil, err
		}
	}

	s.base, s.cancelBase = context.WithCancel(context.Background())
	reg := telemetry.NewRegistry()
	s.metrics = newRequestMetrics(reg)
	api, err := rest.NewMux(s.base, conns, runtime.WithMiddlewares(s.metrics.annotate))
	if err != nil {
		s.closeConns()
		return nil, err
	}
	ready := &readiness.Checker{Timeout: time.Second, Backends: map[string]*grpc.ClientConn{
		"coordinator": conns.Coordinator,
		"taskqueue":   conns.TaskQueue,
		"metrics":     conns.Metrics,
		"dashboard":   conns.Dashboard,
	}}
	// The gateway's own gRPC server has health and reflection only, both
	// public in the policy table.
	s.grpc = grpcserver.New(grpcserver.Options{Name: "gateway", Logger: log, ShutdownTimeout: cfg.ShutdownTimeout,
		Auth: auth.NewAuthorizer(auth.Options{Off: cfg.Auth.Off, Verifier: s.verifier, Limits: cfg.Auth.Limits})})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /readyz", ready)
	if err := apidoc.Register(mux, gaiaproto.OpenAPI, buildinfo.Read().Version); err != nil {
		s.closeConns()
		return nil, err
	}
	teacherpage.Register(mux)
	mux.Handle("/", validRequestText(limitBody(rest.PresentFieldsMask(api), cfg.HTTP.MaxBodyBytes)))

	lis, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		s.closeConns()
		return nil, fmt.Errorf("listen for http on %s: %w", cfg.ListenAddr, err)
	}
	s.lis = lis
	if cfg.MetricsAddr != "" {
		if s.metricsLis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			_ = lis.Close()
			s.closeConns()
			return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.MetricsAddr, err)
		}
		s.registry = reg
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if serverTLS != nil {
		// HTTP/2 (gRPC health included) is negotiated with ALPN; a
		// plaintext request gets 400 from the TLS listener.
		protocols.SetHTTP2(true)
		lis = tls.NewListener(lis, serverTLS.ServerConfig("h2", "http/1.1"))
		s.lis = lis
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	s.http = &http.Server{
		Handler:           s.metrics.wrap(s.route(rateLimited(mux, s.limiter, s.verifier))),
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	log.Info("gateway ready", zap.String("http_address", lis.Addr().String()), zap.Bool("https", serverTLS != nil))
	return s, nil
}

// MaxBodyBytes is the default bound of a REST request body (a full
// RecordMetrics batch of 5,000 events is about 2 MB of JSON); the metrics
// service accepts gRPC messages of the same size.
const MaxBodyBytes = 8 << 20

// limitBody answers 413 to a body over max bytes before any backend sees it:
// by its Content-Length when it has one, and otherwise by reading it here
// (the REST decoder reads it whole anyway). A streaming route's body lasts as
// long as the stream, so there each message (line) is bounded instead.
func limitBody(next http.Handler, max int64) http.Handler {
	tooLarge := fmt.Sprintf("request body: larger than %d bytes (GATEWAY_MAX_BODY_BYTES); send smaller batches", max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, 3, tooLarge)
			return
		}
		if isStreamingRoute(r.URL.Path) {
			r.Body = &lineLimitedBody{ReadCloser: r.Body, max: max}
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
		var over *http.MaxBytesError
		switch {
		case errors.As(err, &over):
			writeError(w, http.StatusRequestEntityTooLarge, 3, tooLarge)
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, 4, "request body: not received within GATEWAY_READ_TIMEOUT")
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, 3, "request body: "+err.Error())
			return
		}
		r.Body = rest.NewBody(body) // which the REST decoder parses in one pass
		next.ServeHTTP(w, r)
	})
}

// writeError answers with the REST error shape, {"error": google.rpc.Status}.
func writeError(w http.ResponseWriter, httpStatus, code int, msg string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg, "details": []any{}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(append(b, '\n'))
}

// isStreamingRoute says whether path is a REST stream: the heartbeat (whose
// body is a stream of messages), watches and subscriptions.
// TestEveryStreamingRouteIsKnown holds this to proto/gateway.yaml.
func isStreamingRoute(path string) bool {
	for _, suffix := range []string{":heartbeat", ":watch", ":subscribe"} {
		if strings.HasSuffix(path, suffix) {
			return true
		}
	}
	return false
}

// lineLimitedBody fails a read once a line (one message of a REST stream)
// passes max bytes, so that a stream cannot make the decoder hold an
// unbounded message.
type lineLimitedBody struct {
	io.ReadCloser
	max, line int64
}

func (b *lineLimitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for _, c := range p[:n] {
		b.line++
		if c == '\n' {
			b.line = 0
		} else if b.line > b.max {
			return 0, fmt.Errorf("a message is larger than %d bytes (GATEWAY_MAX_BODY_BYTES)", b.max)
		}
	}
	return n, err
}

// route sends gRPC calls (HTTP/2 with a gRPC content type) to the gateway's own
// gRPC server and everything else to the REST handlers. Streams are exempt
// from ReadTimeout: over HTTP/2 it closes a request body still being read
// when it passes, which ended the REST heartbeat stream (and the gateway's
// own gRPC streams) mid-way. An HTTP/1.1 response stream such as a watch is
// not affected: net/http lifts the deadline once the request is read.
func (s *Service) route(rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		grpcCall := isGRPC(r)
		if grpcCall || isStreamingRoute(r.URL.Path) {
			if err := http.NewResponseController(w).SetReadDeadline(time.Time{}); err != nil {
				s.log.Warn("cannot lift the read deadline of a stream", zap.Error(err))
			}
		}
		if grpcCall {
			s.grpc.GRPC().ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

func isGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// Addr is where the gateway listens.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Scheme is "https" when the gateway serves TLS, else "http".
func (s *Service) Scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// MetricsAddr is where /metrics is served, or nil when GATEWAY_PROMETHEUS_LISTEN_ADDR is empty.
func (s *Service) MetricsAddr() net.Addr {
	if s.metricsLis == nil {
		return nil
	}
	return s.metricsLis.Addr()
}

// Run serves until ctx ends, then stops taking requests, ends open REST streams
// and waits up to the shutdown timeout for requests in flight.
func (s *Service) Run(ctx context.Context) error {
	defer s.closeConns()
	if s.metricsLis != nil {
		mctx, stopMetrics := context.WithCancel(context.Background())
		metricsDone := make(chan struct{})
		go func() {
			defer close(metricsDone)
			if err := telemetry.Serve(mctx, s.metricsLis, s.registry); err != nil {
				s.log.Warn("metrics server stopped", zap.Error(err))
			}
		}()
		defer func() { stopMetrics(); <-metricsDone }()
	}
	reloadCtx, stopReload := context.WithCancel(context.Background())
	defer stopReload()
	// Restarted after a panic: under `gaia up` the process is every service's.
	go background.Loop(reloadCtx, s.log, "key-reload", background.Options{}, s.reloadKeys)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.lis) }()
	select {
	case err := <-errc:
		s.cancelBase()
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.grpc.Health().Shutdown()
	s.cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("shutdown timed out; closing open connections", zap.Duration("timeout", s.cfg.ShutdownTimeout))
		err = s.http.Close()
	}
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

// reloadKeys re-reads AUTH_PUBLIC_KEYS_FILE now and then, so that a key
// added for a rotation is picked up without a restart.
func (s *Service) reloadKeys(ctx context.Context) {
	if s.verifier == nil {
		return
	}
	t := time.NewTicker(keyReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, err := auth.ReadPublicKeys(s.cfg.Auth.PublicKeysFile)
		if err != nil {
			s.log.Warn("cannot re-read the public keys; keeping the last ones", zap.Error(err))
			continue
		}
		s.verifier.SetKeys(keys)
	}
}

func (s *Service) closeConns() {
	for _, c := range s.conns {
		_ = c.Close()
	}
}
