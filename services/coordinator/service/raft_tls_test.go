package service_test

import (
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/internal/tlsconfig"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/coordinator/internal/raftnode"
)

// TestForgedAppendEntriesWithoutAMemberCertificateIsRefused is issue 9's
// attack as a regression test: an AppendEntries carrying a configuration
// entry that adds a made-up voter, sent straight to the Raft ports of a real
// three-node cluster, once over plain TCP, once with a certificate of
// another CA (a service certificate) and once with a certificate of a CA of
// the attacker's own. Every attempt fails at the TLS handshake; the cluster
// keeps its leader and its three voters, and keeps committing. A peer with a
// member certificate does get through, so the refusals are the certificate's
// doing.
func TestForgedAppendEntriesWithoutAMemberCertificateIsRefused(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true, GRPCTLS: true})
	leader := c.Leader()
	r := leader.Raft()
	term, err := strconv.ParseUint(r.Stats()["term"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	before := r.GetConfiguration()
	if err := before.Error(); err != nil {
		t.Fatal(err)
	}
	cfg := before.Configuration()
	forged := cfg.Clone()
	forged.Servers = append(forged.Servers, raft.Server{Suffrage: raft.Voter, ID: "intruder", Address: "127.0.0.1:1"})
	last := r.LastIndex()
	attack := func() *raft.AppendEntriesRequest {
		return &raft.AppendEntriesRequest{
			RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
			Term:              term + 1,
			PrevLogEntry:      last,
			PrevLogTerm:       term,
			Entries:           []*raft.Log{{Index: last + 1, Term: term + 1, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(forged)}},
			LeaderCommitIndex: last + 1,
		}
	}

	otherCA, err := tlsconfig.NewAuthority("attacker CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ownCA, err := otherCA.Ephemeral("intruder", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serviceCert := open(t, c.PKI.Service("taskqueue"))
	attackers := []struct {
		name      string
		transport raft.Transport
	}{
		{"plain tcp", plainTransport(t)},
		{"tls without a certificate", attackerTransport(t, nil)},
		{"a service certificate", attackerTransport(t, serviceCert)},
		{"a certificate of the attacker's own CA", attackerTransport(t, ownCA)},
	}
	for _, a := range attackers {
		for _, n := range c.Nodes {
			var resp raft.AppendEntriesResponse
			err := a.transport.AppendEntries(raft.ServerID(n.ID), raft.ServerAddress(n.RaftAddr), attack(), &resp)
			if err == nil {
				t.Errorf("%s: forged AppendEntries to %s was answered (success %v, term %d), want a refused handshake",
					a.name, n.ID, resp.Success, resp.Term)
			}
		}
	}

	// The control: a member's certificate gets an answer (a stale term is
	// refused by Raft itself, harmlessly), so the channel the attacks used
	// was open to members.
	member := tlsTransport(t, open(t, c.PKI.ClusterMember()))
	var resp raft.AppendEntriesResponse
	stale := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("member"), Addr: []byte("127.0.0.1:1")}}
	if err := member.AppendEntries(raft.ServerID(leader.ID), raft.ServerAddress(leader.RaftAddr), stale, &resp); err != nil {
		t.Fatalf("a member's AppendEntries failed: %v", err)
	}
	if resp.Success || resp.Term < term {
		t.Errorf("stale AppendEntries answered success %v term %d, want a refusal at term >= %d", resp.Success, resp.Term, term)
	}

	if now := c.Leader(); now.ID != leader.ID {
		t.Errorf("leader changed from %s to %s", leader.ID, now.ID)
	}
	after := c.Leader().Raft().GetConfiguration()
	if err := after.Error(); err != nil {
		t.Fatal(err)
	}
	for _, s := range after.Configuration().Servers {
		if s.ID == "intruder" {
			t.Fatalf("the intruder is in the configuration: %+v", after.Configuration().Servers)
		}
	}
	if got := len(after.Configuration().Servers); got != 3 {
		t.Errorf("configuration has %d servers, want 3", got)
	}
	// Still committing, through TLS on the gRPC port as well.
	register(t, c.Client(), "after-the-attack")
}

func open(t *testing.T, f tlsconfig.Files) *tlsconfig.Source {
	t.Helper()
	src, err := tlsconfig.Open(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func plainTransport(t *testing.T) raft.Transport {
	t.Helper()
	tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// attackerTransport speaks Raft over TLS presenting src's certificate (none
// when nil) and trusting any server, as an attacker would.
func attackerTransport(t *testing.T, src *tlsconfig.Source) raft.Transport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the attacker does not care
	if src != nil {
		cfg.Certificates = src.ClientConfig("").Certificates
	}
	tr := raft.NewNetworkTransport(&attackerLayer{Listener: ln, cfg: cfg}, 1, 2*time.Second, io.Discard)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

type attackerLayer struct {
	net.Listener
	cfg *tls.Config
}

func (l *attackerLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(address), l.cfg)
}

func tlsTransport(t *testing.T, src *tlsconfig.Source) raft.Transport {
	t.Helper()
	layer, err := raftnode.NewTLSStreamLayer("127.0.0.1:0", nil, src)
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransport(layer, 1, 2*time.Second, io.Discard)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}
