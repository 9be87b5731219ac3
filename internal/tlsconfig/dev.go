package tlsconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DevServices are the services `gaia certs dev` issues a certificate for.
var DevServices = []string{"coordinator", "taskqueue", "metrics", "dashboard", "gateway"}

// DevHosts are the names every development certificate carries, so that
// anything on this machine can dial any service.
var DevHosts = []string{"localhost", "127.0.0.1", "::1"}

// Validity of development certificates.
const (
	DevCAValidity   = 365 * 24 * time.Hour
	DevLeafValidity = 90 * 24 * time.Hour
)

// DevLayout is where a development PKI keeps its files, under one folder:
//
//	ca.crt, ca.key                    the CA every service certificate chains to
//	<service>.crt, <service>.key      one per service, for its gRPC or HTTPS port
//	cluster-ca.crt, cluster-ca.key    the CA of Raft members, apart from the other
//	cluster-member.crt, .key          a Raft member's certificate
//
// The Raft CA is separate so that a service certificate (a task queue's, say)
// is not a ticket onto the Raft port.
type DevLayout struct{ Dir string }

// CAFile is the CA that verifies every service.
func (d DevLayout) CAFile() string { return filepath.Join(d.Dir, "ca.crt") }

// Service is the files of one service's identity, trusting the service CA.
func (d DevLayout) Service(name string) Files {
	return ServiceFiles(filepath.Join(d.Dir, name+".crt"), filepath.Join(d.Dir, name+".key"), d.CAFile())
}

// ClusterMember is a Raft member's files, trusting the cluster CA only.
func (d DevLayout) ClusterMember() Files {
	return ServiceFiles(filepath.Join(d.Dir, "cluster-member.crt"), filepath.Join(d.Dir, "cluster-member.key"),
		filepath.Join(d.Dir, "cluster-ca.crt"))
}

// Exists reports whether the folder already holds a complete layout.
func (d DevLayout) Exists() bool {
	paths := []string{d.CAFile()}
	for _, s := range DevServices {
		f := d.Service(s)
		paths = append(paths, f.CertFile, f.KeyFile)
	}
	m := d.ClusterMember()
	paths = append(paths, m.CertFile, m.KeyFile, m.CAFile)
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// WriteDev makes a development PKI in dir: two fresh CAs and a certificate
// for every service and for a Raft member, each valid for DevHosts and
// extraHosts. Keys are written readable by the owner only. It overwrites
// what is there.
func WriteDev(dir string, extraHosts []string) (DevLayout, error) {
	d := DevLayout{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return d, fmt.Errorf("create %s: %w", dir, err)
	}
	hosts := append(append([]string(nil), DevHosts...), extraHosts...)
	ca, err := NewAuthority("GAIA development CA", DevCAValidity)
	if err != nil {
		return d, err
	}
	clusterCA, err := NewAuthority("GAIA development cluster CA", DevCAValidity)
	if err != nil {
		return d, err
	}
	if err := writeAuthority(ca, d.CAFile(), filepath.Join(dir, "ca.key")); err != nil {
		return d, err
	}
	member := d.ClusterMember()
	if err := writeAuthority(clusterCA, member.CAFile, filepath.Join(dir, "cluster-ca.key")); err != nil {
		return d, err
	}
	for _, s := range DevServices {
		if err := issueTo(ca, s, append([]string{s}, hosts...), d.Service(s)); err != nil {
			return d, err
		}
	}
	if err := issueTo(clusterCA, "cluster-member", hosts, member); err != nil {
		return d, err
	}
	return d, nil
}

// EnsureDev returns the layout in dir, making it with WriteDev first when it
// is not complete. made says whether it did.
func EnsureDev(dir string) (d DevLayout, made bool, err error) {
	d = DevLayout{Dir: dir}
	if d.Exists() {
		return d, false, nil
	}
	d, err = WriteDev(dir, nil)
	return d, err == nil, err
}

func writeAuthority(a *Authority, certPath, keyPath string) error {
	key, err := a.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeFile(certPath, a.CertPEM(), 0o644); err != nil {
		return err
	}
	return writeFile(keyPath, key, 0o600)
}

func issueTo(a *Authority, name string, hosts []string, f Files) error {
	cert, key, err := a.Issue(name, hosts, DevLeafValidity)
	if err != nil {
		return err
	}
	if err := writeFile(f.CertFile, cert, 0o644); err != nil {
		return err
	}
	return writeFile(f.KeyFile, key, 0o600)
}

// writeFile replaces path atomically (a rename), so that a process reloading
// its certificate never reads half a file.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), perm)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
