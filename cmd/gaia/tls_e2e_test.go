package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/openapitest"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// TestUpWithTLS is `gaia up --tls` as a new user tries it: every gRPC port
// answers over TLS with the CA it made and refuses plaintext, the gateway
// serves HTTPS (REST and gRPC health) and refuses plain HTTP, a client that
// does not trust the CA is refused, the gaia CLI on the same machine finds
// the CA by itself, and the Raft port refuses a peer without a member
// certificate.
func TestUpWithTLS(t *testing.T) {
	root := t.TempDir()
	raftDir := filepath.Join(root, "raft")
	env := upEnv(t, raftDir)
	p := startUp(t, env, "--tls")
	ready := p.next(t, 90*time.Second)
	if ready.Event != "ready" {
		t.Fatalf("first event = %+v, want ready; logs:\n%s", ready, p.logs())
	}
	if ready.TLS == nil || ready.TLS.CAFile != filepath.Join(root, "certs", "ca.crt") {
		t.Fatalf("ready event TLS = %+v, want the CA in %s", ready.TLS, filepath.Join(root, "certs"))
	}
	trusted, err := tlsconfig.Open(tlsconfig.ClientFiles(ready.TLS.CAFile), nil)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"coordinator", "taskqueue", "metrics", "dashboard", "gateway"} {
		addr := ready.Services[name].Address
		secure, err := grpcclient.Dial(addr, grpcclient.WithTLS(trusted))
		if err != nil {
			t.Fatal(err)
		}
		defer secure.Close()
		assertServing(t, name+" over TLS", secure)

		plain, err := grpcclient.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Errorf("%s answered plaintext gRPC: %v (code %v), want it refused", name, err, code)
		}
	}

	gw := ready.Services["gateway"]
	if !strings.HasPrefix(gw.URL, "https://") {
		t.Fatalf("gateway URL = %q, want https://", gw.URL)
	}
	client := &http.Client{Transport: openapitest.Transport(t, &http.Transport{TLSClientConfig: trusted.ClientConfig(""), ForceAttemptHTTP2: true})}
	defer client.CloseIdleConnections()
	admin := readCredential(t, ready, "admin")
	authed := func(method, url, body string) (*http.Response, error) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		return client.Do(req)
	}
	resp, err := authed(http.MethodGet, gw.URL+"/v1/cluster/status", "")
	if err != nil {
		t.Fatalf("GET over HTTPS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "NODE_STATE_LEADER") {
		t.Errorf("GET %s/v1/cluster/status = %d %s, want 200 with a leader", gw.URL, resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS negotiated %s, want HTTP/2", resp.Proto)
	}
	resp, err = authed(http.MethodPost, gw.URL+"/v1/lessons", `{"project":"web","name":"over-tls"}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"over-tls"`) {
		t.Errorf("POST /v1/lessons over HTTPS = %d %s", resp.StatusCode, body)
	}
	// Plain HTTP on the HTTPS port is refused, not served.
	if resp, err := http.Get("http://" + gw.Address + "/v1/cluster/status"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP was served: %s", body)
		}
	}
	// A client that does not trust the CA gets no answer.
	if _, err := http.Get(gw.URL + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET with the system roots = %v, want a certificate error", err)
	}

	// The CLI on this machine finds the CA through the launcher's state file.
	cliEnv := map[string]string{
		"CLUSTER_DATA_DIR": raftDir,
		"COORDINATOR_ADDR": ready.Services["coordinator"].Address,
		"TASKQUEUE_ADDR":   ready.Services["taskqueue"].Address,
	}
	for k, v := range cliEnv {
		t.Setenv(k, v)
	}
	t.Setenv(tlsconfig.CAFileVar, "")
	os.Unsetenv(tlsconfig.CAFileVar)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"cluster", "status", "--json"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "NODE_STATE_LEADER") {
		t.Errorf("gaia cluster status over TLS exited %d: %s %s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"lesson", "list", "--json"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "over-tls") {
		t.Errorf("gaia lesson list over TLS exited %d: %s %s", code, stdout.String(), stderr.String())
	}

	// The Raft port takes members only.
	raftAddr := regexp.MustCompile(`Raft (\S+),`).FindStringSubmatch(ready.Services["coordinator"].Detail)
	if raftAddr == nil {
		t.Fatalf("no Raft address in %q", ready.Services["coordinator"].Detail)
	}
	assertRaftRefusesStrangers(t, raftAddr[1])

	p.interruptAndWait(t)
	if _, err := os.Stat(filepath.Join(root, upStateFile)); !os.IsNotExist(err) {
		t.Errorf("%s left behind after stopping: %v", upStateFile, err)
	}
}

// assertRaftRefusesStrangers sends a forged AppendEntries to a Raft port in
// plain TCP and over TLS without a certificate: both must fail.
func assertRaftRefusesStrangers(t *testing.T, addr string) {
	t.Helper()
	forged := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
		Term:      1 << 20,
		Entries:   []*raft.Log{{Index: 1 << 20, Term: 1 << 20, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: "intruder", Address: "127.0.0.1:1"}}})}},
	}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var resp raft.AppendEntriesResponse
	if err := plain.AppendEntries("node", raft.ServerAddress(addr), forged, &resp); err == nil {
		t.Errorf("the Raft port at %s answered a plaintext AppendEntries (success %v)", addr, resp.Success)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the stranger trusts anyone
	if err == nil {
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte{0}) // rpcAppendEntries
		if _, err = conn.Read(make([]byte, 1)); err == nil {
			t.Errorf("the Raft port at %s talked to a peer without a certificate", addr)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the Raft port at %s kept a peer without a certificate waiting instead of refusing it", addr)
		}
	}
}
