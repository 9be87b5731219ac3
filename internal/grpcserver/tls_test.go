package grpcserver_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/grpctest"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// TestTLSServesTheRotatedCertificateToNewConnections runs a gRPC server
// over TLS from certificate files, rotates the files, and checks that a new
// connection gets the new certificate while plaintext is refused throughout.
func TestTLSServesTheRotatedCertificateToNewConnections(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsconfig.NewAuthority("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files := tlsconfig.ServiceFiles(filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key"), filepath.Join(dir, "ca.crt"))
	issue := func(cn string) {
		cert, key, err := ca.Issue(cn, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for path, b := range map[string][]byte{files.CertFile: cert, files.KeyFile: key, files.CAFile: ca.CertPEM()} {
			if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		}
	}
	issue("first")
	src, err := tlsconfig.Open(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Options{Name: "tls", TLS: src})
	lis := grpctest.Listen(t)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { stop(); <-served })

	client, err := tlsconfig.Open(tlsconfig.ClientFiles(files.CAFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	// servedAs makes a new connection and returns the certificate's name.
	servedAs := func() (string, error) {
		conn, err := grpcclient.Dial(lis.Addr().String(), grpcclient.WithTLS(client))
		if err != nil {
			return "", err
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var p peer.Peer
		if _, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
			return "", err
		}
		info, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok || len(info.State.PeerCertificates) == 0 {
			return "", status.Error(codes.Internal, "no TLS peer certificate")
		}
		return info.State.PeerCertificates[0].Subject.CommonName, nil
	}
	if cn, err := servedAs(); err != nil || cn != "first" {
		t.Fatalf("first connection: served as %q, %v", cn, err)
	}

	plain, err := grpcclient.Dial(lis.Addr().String(), grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(plain).Check(pctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext call = %v, want UNAVAILABLE (refused)", err)
	}

	issue("second")
	deadline := time.Now().Add(10 * time.Second)
	for {
		cn, err := servedAs()
		if err == nil && cn == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rotating the files new connections are still served as %q (%v)", cn, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
