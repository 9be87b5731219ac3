package service

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestHostsFileResolvesOnlyWhatItLists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hosts")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# pods\n127.0.1.1 coordinator-0.coordinator-raft.gaia.svc\n\n127.0.2.1\tcoordinator-1.coordinator-raft.gaia.svc other # comment\n")
	r := hostsFile(file)
	for _, c := range []struct {
		host string
		want []string
	}{
		{"coordinator-0.coordinator-raft.gaia.svc", []string{"127.0.1.1"}},
		{"Coordinator-1.coordinator-raft.gaia.svc.", []string{"127.0.2.1"}},
		{"other", []string{"127.0.2.1"}},
	} {
		got, err := r.LookupHost(context.Background(), c.host)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("LookupHost(%s) = %v, %v; want %v", c.host, got, err, c.want)
		}
	}
	notFound := func(host string) bool {
		_, err := r.LookupHost(context.Background(), host)
		var dnsErr *net.DNSError
		return errors.As(err, &dnsErr) && dnsErr.IsNotFound
	}
	if !notFound("coordinator-2.coordinator-raft.gaia.svc") {
		t.Error("a name the file does not list must not exist")
	}

	// Re-read at every lookup: a pod deleted is gone, a pod moved is found.
	write("127.0.1.2 coordinator-0.coordinator-raft.gaia.svc\n")
	if got, _ := r.LookupHost(context.Background(), "coordinator-0.coordinator-raft.gaia.svc"); !slices.Equal(got, []string{"127.0.1.2"}) {
		t.Errorf("after the move: %v", got)
	}
	if !notFound("coordinator-1.coordinator-raft.gaia.svc") {
		t.Error("a name removed from the file must stop resolving")
	}

	// A file that cannot be read never says "no such host": the dead-server
	// cleanup would take that for a deleted pod.
	for _, broken := range []func(){
		func() { write("not-an-ip coordinator-0\n") },
		func() { _ = os.Remove(file) },
	} {
		broken()
		if _, err := r.LookupHost(context.Background(), "coordinator-0.coordinator-raft.gaia.svc"); err == nil || notFound("coordinator-0.coordinator-raft.gaia.svc") {
			t.Errorf("a broken file: %v, want a temporary error", err)
		}
	}
}
