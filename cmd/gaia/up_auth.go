package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// localCredential is one credential `gaia up` keeps in its auth folder.
type localCredential struct {
	label string // file name without .token, and what the summary calls it
	scope string // in words, for the summary
	req   *coordinatorv1.IssueCredentialRequest
	file  string
	token string
	// issued is true when this start issued it (its file was missing).
	issued bool
}

// devCredentialTTL is how long the credentials `gaia up` makes stay valid.
const devCredentialTTL = 365 * 24 * time.Hour

// The credentials `gaia up` makes on first start: the admin one the CLI
// presents by itself, the one the services present to each other, and a
// demo app and teacher to try scopes with.
func localCredentialSpecs() []*localCredential {
	ttl := durationpb.New(devCredentialTTL)
	return []*localCredential{
		{label: "admin", scope: "everything", req: &coordinatorv1.IssueCredentialRequest{Role: coordinatorv1.Role_ROLE_ADMIN, Name: "local-admin", Ttl: ttl}},
		{label: "service", scope: "the services calling each other", req: &coordinatorv1.IssueCredentialRequest{Role: coordinatorv1.Role_ROLE_SERVICE, Name: "local-services", Service: "gaia-up", Ttl: ttl}},
		{label: "app", scope: "app demo-app, classroom demo-classroom", req: &coordinatorv1.IssueCredentialRequest{Role: coordinatorv1.Role_ROLE_APP, Name: "demo-app", AppId: "demo-app", ClassroomIds: []string{"demo-classroom"}, Ttl: ttl}},
		{label: "teacher", scope: "teacher demo-teacher, assigned classroom demo-classroom", req: &coordinatorv1.IssueCredentialRequest{Role: coordinatorv1.Role_ROLE_TEACHER, Name: "demo-teacher", TeacherId: "demo-teacher", Ttl: ttl}},
	}
}

// prepareLocalKeys makes (on first start) or reads the signing key in the
// auth folder and points every service at it, unless the environment points
// them elsewhere. With GAIA_AUTH=off it does nothing.
func prepareLocalKeys(cfg *upConfig) (*auth.LocalKeys, error) {
	if cfg.coordinator.Auth.Off {
		return nil, nil
	}
	keys, _, err := auth.EnsureLocalKeys(localAuthDir())
	if err != nil {
		return nil, fmt.Errorf("prepare the signing key in %s: %w", localAuthDir(), err)
	}
	for _, a := range []*auth.Config{&cfg.coordinator.Auth, &cfg.taskqueue.Auth, &cfg.metrics.Auth, &cfg.dashboard.Auth, &cfg.gateway.Auth} {
		if a.PublicKeysFile == "" {
			a.PublicKeysFile = keys.PublicKeysFile
		}
	}
	if cfg.coordinator.Auth.SigningKeyFile == "" {
		cfg.coordinator.Auth.SigningKeyFile = keys.SigningKeyFile
	}
	return keys, nil
}

// ensureLocalCredentials issues, through the running coordinator, every
// local credential whose file is missing or no longer verifies, so that all
// of them show in `gaia auth list` and can be revoked. It presents a
// ten-minute admin credential signed here for the purpose and never stored.
// It then gives the services the service credential.
func ensureLocalCredentials(ctx context.Context, cfg *upConfig, keys *auth.LocalKeys, coordAddr string, clientTLS *tlsconfig.Source, log *zap.Logger) ([]*localCredential, error) {
	if keys == nil {
		return nil, nil
	}
	verifier := auth.NewVerifier(map[string]auth.PublicKey{keys.Signer.KeyID(): keys.Signer.PublicKey()}, nil)
	creds := localCredentialSpecs()
	var missing []*localCredential
	for _, c := range creds {
		c.file = filepath.Join(keys.Dir, c.label+".token")
		tok, err := readTokenFile(c.file)
		if err != nil {
			return nil, err
		}
		if _, err := verifier.Verify(tok); tok != "" && err == nil {
			c.token = tok
			continue
		}
		missing = append(missing, c)
	}
	if len(missing) > 0 {
		bootstrap, _, err := keys.Signer.Sign(auth.Spec{Role: auth.RoleAdmin, Name: "gaia-up-bootstrap", TTL: 10 * time.Minute})
		if err != nil {
			return nil, err
		}
		cl, err := client.New(client.Options{Addrs: []string{coordAddr}, Token: bootstrap, DialOptions: []grpc.DialOption{grpcclient.WithTLS(clientTLS)}})
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		for _, c := range missing {
			ictx, cancel := context.WithTimeout(ctx, 15*time.Second)
			resp, err := cl.Auth().IssueCredential(ictx, c.req)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("issue the local %s credential: %w", c.label, err)
			}
			c.token, c.issued = resp.GetToken(), true
			if err := auth.WriteFileAtomic(c.file, []byte(c.token+"\n"), 0o600); err != nil {
				return nil, err
			}
			log.Info("local credential issued", zap.String("role", c.label), zap.String("file", c.file), zap.String("credential_id", resp.GetCredential().GetCredentialId()))
		}
	}
	for _, c := range creds {
		if c.label != "service" {
			continue
		}
		for _, a := range []*auth.Config{&cfg.taskqueue.Auth, &cfg.metrics.Auth, &cfg.dashboard.Auth} {
			if a.TokenFile == "" {
				a.TokenFile = c.file
			}
		}
	}
	return creds, nil
}

// assignDemoClassroom gives the demo teacher the demo app's classroom when
// the teacher credential was just issued, so that the printed teacher
// credential sees something on the dashboard from the first start.
func assignDemoClassroom(ctx context.Context, creds []*localCredential, dashAddr string, clientTLS *tlsconfig.Source) error {
	var admin string
	var teacher *localCredential
	for _, c := range creds {
		switch c.label {
		case "admin":
			admin = c.token
		case "teacher":
			teacher = c
		}
	}
	if teacher == nil || !teacher.issued {
		return nil
	}
	conn, err := grpcclient.Dial(dashAddr, grpcclient.WithTLS(clientTLS), grpcclient.WithBearer(admin))
	if err != nil {
		return err
	}
	defer conn.Close()
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = dashboardv1.NewDashboardServiceClient(conn).AssignClassroom(actx, &dashboardv1.AssignClassroomRequest{
		TeacherId: teacher.req.GetTeacherId(), ClassroomId: "demo-classroom", DisplayName: "Demo classroom"}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("assign the demo classroom to the demo teacher: %w", err)
	}
	return nil
}
