package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// gaiaCLI runs the gaia command line in this process.
func gaiaCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// isolateCLI keeps the CLI from finding a local `gaia up` (its admin
// credential, its CA) or a credential in the environment.
func isolateCLI(t *testing.T) (authDir string) {
	t.Helper()
	dir := t.TempDir()
	authDir = filepath.Join(dir, "auth")
	t.Setenv("CLUSTER_DATA_DIR", filepath.Join(dir, "raft"))
	t.Setenv(authDirEnv, authDir)
	t.Setenv(tokenEnv, "")
	t.Setenv("TLS_CA_FILE", "")
	t.Setenv(coordinatorAddrEnv, "")
	return authDir
}

// `gaia auth issue`, `list` and `revoke` against a real coordinator: the
// credential issued works, is listed without its token, and once revoked is
// refused.
func TestAuthIssueListRevokeAgainstACoordinator(t *testing.T) {
	authDir := isolateCLI(t)
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	addr := "--coordinator=" + c.Nodes[0].GRPCAddr
	admin := "--token=" + c.AdminToken

	// Issue, human output: the record, then the token shown once.
	code, out, errOut := gaiaCLI("auth", "issue", addr, admin, "--role", "app", "--app", "fractions", "--classroom", "5b", "--classroom", "5c", "--name", "Fractions app")
	if code != 0 {
		t.Fatalf("auth issue --role app: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"role        app\n", "name        Fractions app\n", "scope       app fractions; classrooms 5b,5c\n", "token (shown once;"} {
		if !strings.Contains(out, want) {
			t.Errorf("auth issue output lacks %q:\n%s", want, out)
		}
	}

	// Issue with --json: an operator limited to one project.
	code, out, errOut = gaiaCLI("auth", "issue", addr, admin, "--role", "operator", "--name", "ci", "--project", "web", "--json")
	if code != 0 {
		t.Fatalf("auth issue --role operator: exit %d: %s", code, errOut)
	}
	var issued coordinatorv1.IssueCredentialResponse
	if err := protojson.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatalf("auth issue --json: %v\n%s", err, out)
	}
	id, opToken := issued.GetCredential().GetCredentialId(), issued.GetToken()
	if id == "" || opToken == "" || issued.GetCredential().GetRole() != coordinatorv1.Role_ROLE_OPERATOR {
		t.Fatalf("auth issue --json: %s", out)
	}

	// The new credential works, as an operator: it reads the cluster's
	// status but may not issue credentials.
	if code, _, errOut := gaiaCLI("cluster", "status", addr, "--token="+opToken); code != 0 {
		t.Fatalf("cluster status with the issued operator credential: exit %d: %s", code, errOut)
	}
	if code, _, errOut := gaiaCLI("auth", "issue", addr, "--token="+opToken, "--role", "admin"); code == 0 || !strings.Contains(errOut, "may not call") {
		t.Fatalf("an operator issuing an admin credential: exit %d: %s, want refused", code, errOut)
	}

	// List, with the admin credential found where `gaia up` keeps it.
	if err := os.MkdirAll(authDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(authDir, adminTokenFile), []byte(c.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = gaiaCLI("auth", "list", addr)
	if code != 0 {
		t.Fatalf("auth list: exit %d: %s", code, errOut)
	}
	line := lineWith(out, id)
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(line, "operator") || !strings.Contains(line, "ci") ||
		!strings.Contains(line, "projects web") || !strings.HasSuffix(strings.TrimSpace(line), "valid") {
		t.Fatalf("auth list: the operator's line is %q:\n%s", line, out)
	}
	if !strings.Contains(out, "app fractions; classrooms 5b,5c") {
		t.Errorf("auth list lacks the app credential:\n%s", out)
	}
	if strings.Contains(out, opToken) || strings.Contains(out, c.AdminToken) {
		t.Fatalf("auth list shows a token:\n%s", out)
	}

	// Revoke.
	code, out, errOut = gaiaCLI("auth", "revoke", addr, id)
	if code != 0 {
		t.Fatalf("auth revoke: exit %d: %s", code, errOut)
	}
	if want := "Revoked " + id + " (operator ci).\n"; out != want {
		t.Fatalf("auth revoke printed %q, want %q", out, want)
	}
	code, out, _ = gaiaCLI("auth", "list", addr)
	if line := lineWith(out, id); code != 0 || !strings.Contains(line, "revoked by admin:") {
		t.Fatalf("auth list after revoke: exit %d, the line is %q:\n%s", code, line, out)
	}

	// The revoked credential is refused (within the revocation poll).
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, errOut = gaiaCLI("cluster", "status", addr, "--token="+opToken, "--timeout=2s")
		if code != 0 && strings.Contains(errOut, "revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked credential is still accepted after 10 s: exit %d: %s", code, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Mistakes: a made-up id, a role that cannot be issued.
	if code, _, errOut := gaiaCLI("auth", "revoke", addr, "made-up"); code == 0 || !strings.Contains(strings.ToLower(errOut), "not found") {
		t.Errorf("revoking a made-up id: exit %d: %s, want not found", code, errOut)
	}
	if code, _, errOut := gaiaCLI("auth", "issue", addr, "--role", "session"); code != exitUsage || !strings.Contains(errOut, "--role") {
		t.Errorf("auth issue --role session: exit %d: %s, want a usage error naming --role", code, errOut)
	}
}

// lineWith is the line of out that contains s ("" when none does).
func lineWith(out, s string) string {
	for l := range strings.Lines(out) {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
