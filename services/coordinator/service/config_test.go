package service_test

import (
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	"github.com/gaia-platform/gaia/services/coordinator/service"
)

// TestClusteredBootstrapNeedsTheOtherNodes: a node that may bootstrap a
// cluster must name the cluster's other nodes. Without them, restarted after
// losing its data, it could not tell that from the first start and would
// found a second cluster (issue 17, finding 3).
func TestClusteredBootstrapNeedsTheOtherNodes(t *testing.T) {
	pki, err := tlsconfig.WriteDev(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	member := pki.ClusterMember()
	base := map[string]string{
		"CLUSTER_ENABLED":       "true",
		"CLUSTER_NODE_ID":       "node-1",
		"CLUSTER_TLS_CERT_FILE": member.CertFile,
		"CLUSTER_TLS_KEY_FILE":  member.KeyFile,
		"CLUSTER_TLS_CA_FILE":   member.CAFile,
	}
	three := "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		refused string // the variable named in the error; "" accepts
	}{
		{"bootstrap without peers", map[string]string{"CLUSTER_BOOTSTRAP": "true"}, "CLUSTER_DISCOVERY_NODES"},
		{"named bootstrap node without peers", map[string]string{"CLUSTER_BOOTSTRAP_NODE_ID": "node-1"}, "CLUSTER_DISCOVERY_NODES"},
		{"joining node without peers", map[string]string{}, "CLUSTER_DISCOVERY_NODES"},
		{"bootstrap with peers", map[string]string{"CLUSTER_BOOTSTRAP": "true", "CLUSTER_DISCOVERY_NODES": three}, ""},
		{"joining node with peers", map[string]string{"CLUSTER_DISCOVERY_NODES": three}, ""},
		{"another node bootstraps", map[string]string{"CLUSTER_BOOTSTRAP_NODE_ID": "node-0", "CLUSTER_DISCOVERY_NODES": three}, ""},
		{"standalone needs none", map[string]string{"CLUSTER_ENABLED": "false"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			l := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			service.LoadConfig(l)
			err := l.Err()
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("error %v, want one naming %s", err, tc.refused)
			}
		})
	}
}

// The session history a snapshot carries is part of what a node keeps: a
// larger bound than the retention is refused, naming both variables.
func TestSnapshotEventsWithinTheRetention(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		refused bool
	}{
		{map[string]string{}, false},
		{map[string]string{"SESSION_EVENT_RETENTION": "5000"}, false}, // the snapshot bound follows it down
		{map[string]string{"SESSION_EVENT_RETENTION": "5000", "SESSION_SNAPSHOT_EVENTS": "5001"}, true},
		{map[string]string{"SESSION_EVENT_RETENTION": "5000", "SESSION_SNAPSHOT_EVENTS": "5000"}, false},
		{map[string]string{"SESSION_SNAPSHOT_EVENTS": "0"}, false},
		{map[string]string{"SESSION_SNAPSHOT_EVENTS": "-1"}, true},
	} {
		l := config.NewLoader(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		c := service.LoadConfig(l)
		err := l.Err()
		if tc.refused != (err != nil) || (err != nil && !strings.Contains(err.Error(), "SESSION_SNAPSHOT_EVENTS")) {
			t.Errorf("%v: error %v, want refused=%v naming SESSION_SNAPSHOT_EVENTS", tc.env, err, tc.refused)
		}
		if err == nil && len(tc.env) == 0 && (c.Session.EventRetention != 100_000 || c.Session.SnapshotEvents != 10_000) {
			t.Errorf("defaults: retention %d, snapshot events %d", c.Session.EventRetention, c.Session.SnapshotEvents)
		}
	}
}
