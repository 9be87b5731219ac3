package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// newCertsCommand is `gaia certs`, whose one subcommand makes a development
// PKI.
func newCertsCommand() *cobra.Command {
	group := newCommandGroup("certs", "Make TLS certificates to try GAIA over TLS")
	group.AddCommand(newCertsDevCommand())
	return group
}

func newCertsDevCommand() *cobra.Command {
	var dir string
	var hosts []string
	var force bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Make a local CA and a certificate for every service (valid for localhost and 127.0.0.1)",
		Long: `Makes a development PKI in --dir (default data/certs, beside the Raft data):

  ca.crt, ca.key                  a CA that signs every service certificate
  <service>.crt, <service>.key    coordinator, taskqueue, metrics, dashboard, gateway
  cluster-ca.crt, cluster-ca.key  a separate CA for the Raft port (mutual TLS)
  cluster-member.crt, .key        a Raft member's certificate

Every certificate is valid for localhost, 127.0.0.1 and ::1 (add names with
--host). Point a service at its files with TLS_CERT_FILE, TLS_KEY_FILE and
TLS_CA_FILE, and a clustered coordinator's Raft port at the member files with
CLUSTER_TLS_CERT_FILE, CLUSTER_TLS_KEY_FILE and CLUSTER_TLS_CA_FILE.
'gaia up --tls' makes these files itself when they are missing. For trying
things out only: production certificates come from a real CA.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				dir = defaultCertsDir()
			}
			for _, h := range hosts {
				if strings.TrimSpace(h) == "" || strings.ContainsAny(h, " /,") {
					return usageError{fmt.Errorf("--host %q: want a host name or IP address", h)}
				}
			}
			layout := tlsconfig.DevLayout{Dir: dir}
			if layout.Exists() && !force {
				fmt.Fprintf(cmd.OutOrStdout(), "Certificates already in %s (--force makes new ones).\n", dir)
				return nil
			}
			if _, err := tlsconfig.WriteDev(dir, hosts); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Made a development CA and certificates in %s.\n\n", dir)
			fmt.Fprintf(out, "  CA (trust it in clients)   %s\n", layout.CAFile())
			for _, s := range tlsconfig.DevServices {
				f := layout.Service(s)
				fmt.Fprintf(out, "  %-26s %s, %s\n", s, f.CertFile, f.KeyFile)
			}
			m := layout.ClusterMember()
			fmt.Fprintf(out, "  %-26s %s, %s (CA %s)\n", "Raft member", m.CertFile, m.KeyFile, m.CAFile)
			fmt.Fprintf(out, "\nRun everything over TLS with: gaia up --tls\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the files (default data/certs, or certs beside $CLUSTER_DATA_DIR)")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "another name or IP address every certificate is valid for (repeatable)")
	cmd.Flags().BoolVar(&force, "force", false, "replace certificates that are already there")
	return cmd
}

// localDataDir is the folder `gaia up` keeps its local state in: the parent
// of the Raft data folder (CLUSTER_DATA_DIR, default data/raft), so data/.
func localDataDir() string {
	raftDir := strings.TrimSpace(os.Getenv("CLUSTER_DATA_DIR"))
	if raftDir == "" {
		raftDir = filepath.Join("data", "raft")
	}
	return filepath.Dir(filepath.Clean(raftDir))
}

// defaultCertsDir is where `gaia certs dev` and `gaia up --tls` keep the
// development PKI.
func defaultCertsDir() string { return filepath.Join(localDataDir(), "certs") }
