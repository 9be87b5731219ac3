package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// upStateFile is what a running `gaia up` leaves in its data folder for the
// CLI on the same machine: whether it serves TLS and which CA to trust.
const upStateFile = "up.json"

type upState struct {
	TLS     bool              `json:"tls"`
	CAFile  string            `json:"ca_file,omitempty"`
	Gateway string            `json:"gateway,omitempty"`
	Addrs   map[string]string `json:"addresses,omitempty"`
}

func writeUpState(dir string, st upState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, upStateFile), append(b, '\n'), 0o644)
}

func readUpState(dir string) (upState, bool, error) {
	var st upState
	b, err := os.ReadFile(filepath.Join(dir, upStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("%s: %w", filepath.Join(dir, upStateFile), err)
	}
	return st, true, nil
}

// cliTLS is the TLS the CLI dials with: the CA in TLS_CA_FILE when set;
// else, when a `gaia up --tls` runs from this folder, the CA it recorded;
// else nil, plaintext.
func cliTLS() (*tlsconfig.Source, error) {
	if ca := strings.TrimSpace(os.Getenv(tlsconfig.CAFileVar)); ca != "" {
		src, err := tlsconfig.Open(tlsconfig.ClientFiles(ca), nil)
		if err != nil {
			return nil, configError{err}
		}
		return src, nil
	}
	st, ok, err := readUpState(localDataDir())
	if err != nil || !ok || !st.TLS {
		return nil, nil //nolint:nilerr // an unreadable state file means no local gaia up to follow
	}
	src, err := tlsconfig.Open(tlsconfig.ClientFiles(st.CAFile), nil)
	if err != nil {
		return nil, fmt.Errorf("the CA of the local gaia up --tls: %w", err)
	}
	return src, nil
}

// cliDialOptions are the dial options every CLI connection takes.
func cliDialOptions() ([]grpc.DialOption, error) {
	src, err := cliTLS()
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{grpcclient.WithTLS(src)}, nil
}
