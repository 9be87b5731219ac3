package service

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/internal/config"
)

// names is a resolver that knows a fixed set of host names.
type names map[string]bool

func (n names) LookupHost(_ context.Context, host string) ([]string, error) {
	if n[host] {
		return []string{"127.0.0.1"}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// The pattern finds every pod that exists, past a pod being recreated, with
// no list to keep in step with the replica count.
func TestDiscoveryPatternFindsEveryPodThatResolves(t *testing.T) {
	pod := func(i string) string { return "coordinator-" + i + ".coordinator-raft.gaia.svc" }
	for _, c := range []struct {
		name string
		pods []string
		want []string
	}{
		{"one replica", []string{"0"}, []string{"0"}},
		{"three replicas", []string{"0", "1", "2"}, []string{"0", "1", "2"}},
		{"scaled to five", []string{"0", "1", "2", "3", "4"}, []string{"0", "1", "2", "3", "4"}},
		{"pod 1 being recreated", []string{"0", "2"}, []string{"0", "2"}},
		{"pods 0 and 1 being recreated", []string{"2", "3"}, []string{"2", "3"}},
		{"none yet", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dns := names{}
			for _, p := range c.pods {
				dns[pod(p)] = true
			}
			s := &Service{resolver: dns, cfg: Config{Cluster: ClusterConfig{
				DiscoveryNodes:   []string{"seed.example:7001"},
				DiscoveryPattern: "coordinator-{ordinal}.coordinator-raft.gaia.svc:7001",
			}}}
			want := []string{"seed.example:7001"}
			for _, p := range c.want {
				want = append(want, pod(p)+":7001")
			}
			if got := s.discoveryNodes(context.Background()); !slices.Equal(got, want) {
				t.Errorf("discovery nodes = %v, want %v", got, want)
			}
		})
	}
}

// A DNS server that fails to answer does not make pods disappear: the node
// asks them, and learns from their silence.
func TestDiscoveryPatternKeepsNamesTheDNSCouldNotAnswerFor(t *testing.T) {
	s := &Service{resolver: failingDNS{}, cfg: Config{Cluster: ClusterConfig{DiscoveryPattern: "c-{ordinal}.svc:7001"}}}
	got := s.discoveryNodes(context.Background())
	if len(got) != discoveryMaxOrdinal {
		t.Errorf("with DNS failing, %d names known, want all %d the probe allows", len(got), discoveryMaxOrdinal)
	}
}

type failingDNS struct{}

func (failingDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
}

func TestDiscoveryPatternIsChecked(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{"coordinator-{ordinal}.coordinator-raft.gaia.svc:7001", ""},
		{"coordinator.coordinator-raft.gaia.svc:7001", "{ordinal} once"},
		{"coordinator-{ordinal}-{ordinal}.svc:7001", "{ordinal} once"},
		{"coordinator-{ordinal}.svc", "host:port"},
		{"coordinator.svc:700{ordinal}", "not the port"},
	} {
		env := map[string]string{"CLUSTER_ENABLED": "true", "CLUSTER_NODE_ID": "coordinator-1.svc", "CLUSTER_DISCOVERY_PATTERN": c.pattern,
			"CLUSTER_TLS_CERT_FILE": "c", "CLUSTER_TLS_KEY_FILE": "k", "CLUSTER_TLS_CA_FILE": "a"}
		l := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		LoadConfig(l)
		err := l.Err()
		switch {
		case c.want == "" && err != nil && strings.Contains(err.Error(), "CLUSTER_DISCOVERY"):
			t.Errorf("%q refused: %v", c.pattern, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), "CLUSTER_DISCOVERY_PATTERN") || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want a refusal naming CLUSTER_DISCOVERY_PATTERN and saying %q", c.pattern, err, c.want)
		}
	}
}
