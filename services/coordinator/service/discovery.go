package service

import (
	"context"
	"net"
	"strconv"
	"strings"
)

// Discovery through the StatefulSet's own DNS names.
//
// CLUSTER_DISCOVERY_PATTERN names every pod at once, e.g.
// coordinator-{ordinal}.coordinator-raft.gaia.svc:7001: a node tries the
// names for ordinals 0, 1, 2 … through its resolver at every join attempt and
// knows each that resolves. A headless Service with publishNotReadyAddresses
// has a record for exactly the pods that exist, so scaling the StatefulSet
// changes the set with no list to keep in step. A name that does not resolve
// is a pod that does not exist (a scale-down, or a pod being recreated);
// probing goes on past such gaps and stops after discoveryMaxMisses missing
// names in a row.

// OrdinalPlaceholder is what CLUSTER_DISCOVERY_PATTERN replaces with a pod's
// ordinal.
const OrdinalPlaceholder = "{ordinal}"

const (
	// discoveryMaxMisses missing names in a row end the probe: more than a
	// StatefulSet ever has missing at once while it rolls pods.
	discoveryMaxMisses = 3
	// discoveryMaxOrdinal bounds the probe whatever the DNS says.
	discoveryMaxOrdinal = 64
)

// validDiscoveryPattern says what is wrong with a pattern, or "".
func validDiscoveryPattern(p string) string {
	if strings.Count(p, OrdinalPlaceholder) != 1 {
		return "a host:port with " + OrdinalPlaceholder + " once, such as coordinator-" + OrdinalPlaceholder + ".coordinator-raft.gaia.svc:7001"
	}
	host, port, err := net.SplitHostPort(strings.Replace(p, OrdinalPlaceholder, "0", 1))
	if err != nil || host == "" || port == "" {
		return "a host:port with " + OrdinalPlaceholder + " in the host, such as coordinator-" + OrdinalPlaceholder + ".coordinator-raft.gaia.svc:7001"
	}
	if !strings.Contains(host, "0") {
		return "the " + OrdinalPlaceholder + " placeholder in the host name, not the port"
	}
	return ""
}

// discoveryNodes is CLUSTER_DISCOVERY_NODES and, with a pattern, every pod
// name that resolves now (see above), without repeats.
func (s *Service) discoveryNodes(ctx context.Context) []string {
	out := append([]string(nil), s.cfg.Cluster.DiscoveryNodes...)
	p := s.cfg.Cluster.DiscoveryPattern
	if p == "" {
		return out
	}
	seen := map[string]bool{}
	for _, a := range out {
		seen[a] = true
	}
	for ord, misses := 0, 0; ord < discoveryMaxOrdinal && misses < discoveryMaxMisses; ord++ {
		addr := strings.Replace(p, OrdinalPlaceholder, strconv.Itoa(ord), 1)
		host, _, _ := net.SplitHostPort(addr)
		if !s.resolvable(ctx, host) {
			misses++
			continue
		}
		misses = 0
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out
}
