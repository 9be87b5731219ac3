package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// Where the CLI finds the credential it presents when --token is not given:
// $GAIA_TOKEN, else the admin credential `gaia up` keeps in its data folder
// ($GAIA_AUTH_DIR, default the folder beside CLUSTER_DATA_DIR: data/auth),
// so that on the machine running `gaia up` every command works with no
// setup.
const (
	tokenEnv       = "GAIA_TOKEN"
	authDirEnv     = "GAIA_AUTH_DIR"
	defaultAuthDir = "data/auth"
	adminTokenFile = "admin.token"
)

// addTokenFlag adds --token to the root command, for every subcommand.
func addTokenFlag(root *cobra.Command) {
	root.PersistentFlags().String("token", "", "credential to present (default $"+tokenEnv+", else the admin credential `gaia up` keeps in $"+authDirEnv+", default "+defaultAuthDir+")")
}

// localAuthDir is the folder `gaia up` keeps its keys and credentials in.
func localAuthDir() string {
	if d := strings.TrimSpace(os.Getenv(authDirEnv)); d != "" {
		return d
	}
	return filepath.Join(localDataDir(), "auth")
}

// cliToken is the credential a command presents: --token, $GAIA_TOKEN, or
// the local admin credential; "" when there is none (agent sessions need
// none).
func cliToken(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("token"); f != nil && f.Changed {
		return strings.TrimSpace(f.Value.String())
	}
	if v := strings.TrimSpace(os.Getenv(tokenEnv)); v != "" {
		return v
	}
	b, err := os.ReadFile(filepath.Join(localAuthDir(), adminTokenFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func newAuthCommand() *cobra.Command {
	cmd, f := newCoordinatorGroup("auth", "Issue, list and revoke credentials (needs an admin credential)")
	cmd.AddCommand(newAuthIssueCommand(f), newAuthListCommand(f), newAuthRevokeCommand(f), newAuthKeysCommand())
	return cmd
}

var roleNames = map[string]coordinatorv1.Role{
	"admin":    coordinatorv1.Role_ROLE_ADMIN,
	"operator": coordinatorv1.Role_ROLE_OPERATOR,
	"app":      coordinatorv1.Role_ROLE_APP,
	"teacher":  coordinatorv1.Role_ROLE_TEACHER,
	"service":  coordinatorv1.Role_ROLE_SERVICE,
}

func roleName(r coordinatorv1.Role) string {
	for n, v := range roleNames {
		if v == r {
			return n
		}
	}
	return "unknown"
}

func newAuthIssueCommand(f *coordinatorFlags) *cobra.Command {
	var role, name, teacher, app, service string
	var classrooms, projects []string
	var ttl time.Duration
	var out, signingKey string
	cmd := &cobra.Command{
		Use:   "issue --role admin|operator|app|teacher|service [--teacher T] [--app A [--classroom C]...] [--project P]... [--service S]",
		Short: "Issue a credential and print its token (shown once)",
		Example: `  gaia auth issue --role teacher --teacher t-42 --name "Ms Rivera"
  gaia auth issue --role app --app fractions --classroom 5b --classroom 5c
  gaia auth issue --role operator --project gaia-web
  curl -H "Authorization: Bearer $(gaia auth issue --role operator --token-only)" localhost:8080/v1/tasks`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, ok := roleNames[role]
			if !ok {
				return usageError{fmt.Errorf("--role %q: want one of admin, operator, app, teacher, service", role)}
			}
			if signingKey != "" {
				return issueOffline(cmd, signingKey, auth.Spec{Role: auth.Role(role), Name: name, TeacherID: teacher, AppID: app, Classrooms: classrooms, Projects: projects, Service: service, TTL: ttl}, out)
			}
			req := &coordinatorv1.IssueCredentialRequest{Role: r, Name: name, TeacherId: teacher, AppId: app, ClassroomIds: classrooms, Projects: projects, Service: service}
			if ttl != 0 {
				req.Ttl = durationpb.New(ttl)
			}
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Auth().IssueCredential(ctx, req)
				if err != nil {
					return err
				}
				if out != "" {
					if err := auth.WriteFileAtomic(out, []byte(resp.GetToken()+"\n"), 0o600); err != nil {
						return err
					}
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					if tokenOnly, _ := cmd.Flags().GetBool("token-only"); tokenOnly {
						_, err := fmt.Fprintln(w, resp.GetToken())
						return err
					}
					renderCredential(w, resp.GetCredential())
					_, err := fmt.Fprintf(w, "\ntoken (shown once; send it as \"Authorization: Bearer <token>\"):\n%s\n", resp.GetToken())
					return err
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&role, "role", "", "admin, operator, app, teacher or service (required)")
	fs.StringVar(&name, "name", "", "a label for people")
	fs.StringVar(&teacher, "teacher", "", "the teacher id (role teacher)")
	fs.StringVar(&app, "app", "", "the app id (role app)")
	fs.StringArrayVar(&classrooms, "classroom", nil, "a classroom the app may post for (role app; repeat; none: any)")
	fs.StringArrayVar(&projects, "project", nil, "a project the operator may touch (role operator; repeat; none: all)")
	fs.StringVar(&service, "service", "", "the calling service's name (role service)")
	fs.DurationVar(&ttl, "ttl", 0, "how long it is valid (default 90 days, at most 2 years)")
	fs.StringVar(&out, "out", "", "also write the token to this file (mode 0600)")
	fs.Bool("token-only", false, "print only the token")
	fs.StringVar(&signingKey, "signing-key", "", "sign here with this private key instead of asking the coordinator: for the first admin credential of a new cluster (not listed by `gaia auth list`; revocable by id)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// issueOffline signs a credential with a local key, without the
// coordinator: how the first admin credential of a cluster is made.
func issueOffline(cmd *cobra.Command, keyFile string, spec auth.Spec, out string) error {
	key, err := auth.ReadPrivateKey(keyFile)
	if err != nil {
		return usageError{fmt.Errorf("--signing-key: %w", err)}
	}
	token, p, err := auth.NewSigner(key).Sign(spec)
	if err != nil {
		return usageError{err}
	}
	if out != "" {
		if err := auth.WriteFileAtomic(out, []byte(token+"\n"), 0o600); err != nil {
			return err
		}
	}
	if tokenOnly, _ := cmd.Flags().GetBool("token-only"); tokenOnly {
		_, err := fmt.Fprintln(cmd.OutOrStdout(), token)
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "credential %s (%s), signed with key %s, expires %s; not recorded in the cluster\ntoken:\n%s\n",
		p.CredentialID, p.Role, p.KeyID, p.ExpiresAt.Format(time.RFC3339), token)
	return err
}

func newAuthKeysCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keys DIR",
		Short: "Make a signing key pair in DIR (signing.key, public.pem) unless one is there",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, created, err := auth.EnsureLocalKeys(args[0])
			if err != nil {
				return err
			}
			verb := "kept"
			if created {
				verb = "made"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Signing key %s (key id %s):\n  AUTH_SIGNING_KEY_FILE=%s   (coordinators only; keep it secret)\n  AUTH_PUBLIC_KEYS_FILE=%s   (every service)\n",
				verb, k.Signer.KeyID(), k.SigningKeyFile, k.PublicKeysFile)
			return err
		},
	}
}

func newAuthListCommand(f *coordinatorFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List issued credentials (never their tokens)",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Auth().ListCredentials(ctx, &coordinatorv1.ListCredentialsRequest{})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					tw := newTable(w)
					fmt.Fprintln(tw, "ID\tROLE\tNAME\tSCOPE\tEXPIRES\tSTATE")
					for _, c := range resp.GetCredentials() {
						state := "valid"
						switch {
						case c.GetRevokedAt() != nil:
							state = "revoked by " + c.GetRevokedBy()
						case c.GetExpiresAt().AsTime().Before(time.Now()):
							state = "expired"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.GetCredentialId(), roleName(c.GetRole()), orDash(c.GetName()), scopeOf(c), c.GetExpiresAt().AsTime().Format(time.DateOnly), state)
					}
					return tw.Flush()
				})
			})
		},
	}
}

func newAuthRevokeCommand(f *coordinatorFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke CREDENTIAL_ID",
		Short: "Revoke a credential; every service refuses it within seconds",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.call(cmd, 0, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Auth().RevokeCredential(ctx, &coordinatorv1.RevokeCredentialRequest{CredentialId: args[0]})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "Revoked %s (%s %s).\n", resp.GetCredential().GetCredentialId(), roleName(resp.GetCredential().GetRole()), orDash(resp.GetCredential().GetName()))
					return err
				})
			})
		},
	}
}

func renderCredential(w io.Writer, c *coordinatorv1.Credential) {
	tw := newTable(w)
	fmt.Fprintf(tw, "credential\t%s\n", c.GetCredentialId())
	fmt.Fprintf(tw, "role\t%s\n", roleName(c.GetRole()))
	if c.GetName() != "" {
		fmt.Fprintf(tw, "name\t%s\n", c.GetName())
	}
	fmt.Fprintf(tw, "scope\t%s\n", scopeOf(c))
	fmt.Fprintf(tw, "expires\t%s\n", c.GetExpiresAt().AsTime().Format(time.RFC3339))
	_ = tw.Flush()
}

func scopeOf(c *coordinatorv1.Credential) string {
	var parts []string
	if c.GetTeacherId() != "" {
		parts = append(parts, "teacher "+c.GetTeacherId())
	}
	if c.GetAppId() != "" {
		parts = append(parts, "app "+c.GetAppId())
	}
	if len(c.GetClassroomIds()) > 0 {
		parts = append(parts, "classrooms "+strings.Join(c.GetClassroomIds(), ","))
	}
	if len(c.GetProjects()) > 0 {
		parts = append(parts, "projects "+strings.Join(c.GetProjects(), ","))
	}
	if c.GetService() != "" {
		parts = append(parts, "service "+c.GetService())
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, "; ")
}

// readTokenFile reads a credential file, "" when it does not exist.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
