package service

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
)

// TestHostsEnv names a hosts-style file that, for tests only, stands in for
// the cluster DNS of a coordinator process: every peer name the node dials
// (Raft, discovery and joins, forwarding to the leader) and every dead-voter
// lookup is answered from this file, re-read at each lookup, and a name the
// file does not list does not exist. A test that runs coordinator processes
// the way a StatefulSet runs its pods points each pod name
// (coordinator-0.coordinator-raft.gaia.svc …) at a loopback address of its
// own, moves it when the pod is recreated and deletes the line when the pod
// is deleted, by rewriting the file (a new file renamed over the old one, so
// that a reader never sees half of it).
//
// Unset, the default, names resolve through the system resolver as always.
// Never set it in production: it replaces DNS entirely. Options.Resolver,
// the in-process equivalent, takes precedence.
const TestHostsEnv = "GAIA_TEST_HOSTS"

// hostsFile resolves names from a file in /etc/hosts form: an address, then
// the names it answers for, per line; '#' starts a comment.
type hostsFile string

func (f hostsFile) LookupHost(_ context.Context, host string) ([]string, error) {
	hosts, err := f.read()
	if err != nil {
		// Not "no such host": a file that cannot be read must never make a
		// voter look deleted.
		return nil, &net.DNSError{Err: err.Error(), Name: host, IsTemporary: true}
	}
	if addrs := hosts[strings.ToLower(strings.TrimSuffix(host, "."))]; len(addrs) > 0 {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host (not in " + TestHostsEnv + " file " + string(f) + ")", Name: host, IsNotFound: true}
}

func (f hostsFile) read() (map[string][]string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if net.ParseIP(fields[0]) == nil || len(fields) < 2 {
			return nil, fmt.Errorf("%s line %d: want an IP address and at least one name, got %q", string(f), n, sc.Text())
		}
		for _, name := range fields[1:] {
			name = strings.ToLower(strings.TrimSuffix(name, "."))
			out[name] = append(out[name], fields[0])
		}
	}
	return out, sc.Err()
}
