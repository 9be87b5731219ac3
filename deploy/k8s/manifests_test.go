// Package k8s_test renders every kustomization under deploy/k8s with the
// kustomize engine that kubectl embeds (kubectl kustomize), decodes every
// object strictly into the Kubernetes API types (an unknown or misspelt
// field fails), and checks the rules docs/DEPLOY.md promises: probes,
// resources and a hardened securityContext on every container, images by
// tag, every environment variable one that its service reads and a value
// it accepts, Services and probes pointing at declared ports, budgets that
// keep the Raft quorum, NetworkPolicies that open only what DESIGN.md says.
//
// The checks stay in one file (more than 500 lines) because they all walk the
// same rendered object set; splitting them would scatter the one list of
// promises docs/DEPLOY.md makes.
package k8s_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinator "github.com/gaia-platform/gaia/services/coordinator/service"
	dashboard "github.com/gaia-platform/gaia/services/dashboard/service"
	gateway "github.com/gaia-platform/gaia/services/gateway/service"
	metrics "github.com/gaia-platform/gaia/services/metrics/service"
	taskqueue "github.com/gaia-platform/gaia/services/taskqueue/service"
)

// loaders read each GAIA binary's configuration, as its main does, and
// return its credentials settings (nil for the CLI, which serves nothing).
var loaders = map[string]func(*config.Loader) *auth.Config{
	"coordinator": func(l *config.Loader) *auth.Config { c := coordinator.LoadConfig(l); return &c.Auth },
	"taskqueue":   func(l *config.Loader) *auth.Config { c := taskqueue.LoadConfig(l); return &c.Auth },
	"metrics":     func(l *config.Loader) *auth.Config { c := metrics.LoadConfig(l); return &c.Auth },
	"dashboard":   func(l *config.Loader) *auth.Config { c := dashboard.LoadConfig(l); return &c.Auth },
	"gateway":     func(l *config.Loader) *auth.Config { c := gateway.LoadConfig(l); return &c.Auth },
	// The CLI's migrate command (migration Jobs).
	"gaia": func(l *config.Loader) *auth.Config { pg.URL(l, "DATABASE_URL", pg.DefaultURL); return nil },
}

// presents is the role of the credential (AUTH_TOKEN_FILE) each service
// must hold: the coordinator joins the cluster and asks its peers for their
// status as an admin; the services that call others (and poll the
// coordinator's revocation list) as a service. The gateway presents none:
// it passes its callers' credentials through.
var presents = map[string]auth.Role{
	"coordinator": auth.RoleAdmin,
	"taskqueue":   auth.RoleService,
	"metrics":     auth.RoleService,
	"dashboard":   auth.RoleService,
}

// talksTo is DESIGN.md's "talks to" column: the GAIA workloads each one may
// open connections to (besides DNS and PostgreSQL).
var talksTo = map[string][]string{
	"coordinator": {"coordinator"},
	"taskqueue":   {"coordinator"},
	// Plus the dashboard, asked which classrooms a teacher has
	// (docs/SECURITY.md).
	"metrics": {"coordinator", "dashboard"},
	// Plus the coordinator for the revocation list every service polls
	// (docs/SECURITY.md).
	"dashboard": {"metrics", "coordinator"},
	"gateway":   {"coordinator", "taskqueue", "metrics", "dashboard"},
}

// externalSecrets are the Secrets an operator creates (docs/DEPLOY.md) and
// the keys they hold, with values shaped as real ones would be.
var externalSecrets = map[string]map[string]string{
	"gaia-database":           {"DATABASE_URL": "postgres://gaia:secret@db.example.com:5432/gaia?sslmode=require"},
	"coordinator-credentials": {"CLUSTER_JOIN_SECRET": "join-secret"},
	// Mounted as files; the test writes real PEM, keys and credentials for
	// them (see materialize).
	"coordinator-raft-tls":   {"tls.crt": "", "tls.key": "", "ca.crt": ""},
	"gaia-grpc-tls":          {"tls.crt": "", "tls.key": "", "ca.crt": ""},
	"gaia-auth-public-keys":  {"public.pem": ""},
	"gaia-auth-signing-key":  {"signing.key": ""},
	"gaia-coordinator-token": {"token": ""},
	"gaia-service-token":     {"token": ""},
}

// pki is a development PKI whose files stand in for mounted certificate
// Secrets, so that the binaries' loaders, which read and parse them at
// start, see real certificates.
var pki tlsconfig.DevLayout

// authFiles stand in for the credential Secrets an operator creates: a
// signing key, its public key, and an admin and a service credential it
// signed, as docs/DEPLOY.md makes them.
var authFiles struct {
	keys                 *auth.LocalKeys
	adminToken, svcToken string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gaia-k8s-pki-")
	if err != nil {
		panic(err)
	}
	if pki, err = tlsconfig.WriteDev(dir, nil); err != nil {
		panic(err)
	}
	if authFiles.keys, _, err = auth.EnsureLocalKeys(filepath.Join(dir, "auth")); err != nil {
		panic(err)
	}
	for _, c := range []struct {
		file *string
		spec auth.Spec
	}{
		{&authFiles.adminToken, auth.Spec{Role: auth.RoleAdmin, Name: "k8s-test-admin"}},
		{&authFiles.svcToken, auth.Spec{Role: auth.RoleService, Service: "k8s-test", Name: "k8s-test-services"}},
	} {
		tok, _, err := authFiles.keys.Signer.Sign(c.spec)
		if err != nil {
			panic(err)
		}
		*c.file = filepath.Join(dir, "auth", string(c.spec.Role)+".token")
		if err := os.WriteFile(*c.file, []byte(tok+"\n"), 0o600); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// secretFile is the stand-in for key of an external certificate or
// credential Secret.
func secretFile(secret, key string) (string, bool) {
	var f tlsconfig.Files
	switch {
	case secret == "coordinator-raft-tls" || strings.HasPrefix(secret, "coordinator-raft-tls-"):
		f = pki.ClusterMember()
	case secret == "gaia-grpc-tls":
		f = pki.Service("gateway") // any service certificate the service CA signed
	case secret == "gaia-auth-public-keys" && key == "public.pem":
		return authFiles.keys.PublicKeysFile, true
	case secret == "gaia-auth-signing-key" && key == "signing.key":
		return authFiles.keys.SigningKeyFile, true
	case secret == "gaia-coordinator-token" && key == "token":
		return authFiles.adminToken, true
	case secret == "gaia-service-token" && key == "token":
		return authFiles.svcToken, true
	default:
		return "", false
	}
	switch key {
	case "tls.crt":
		return f.CertFile, true
	case "tls.key":
		return f.KeyFile, true
	case "ca.crt":
		return f.CAFile, true
	}
	return "", false
}

// materialize replaces every value that is a path inside a Secret volume
// the container mounts with a real file holding what that key would, after
// checking the Secret has the key: the rendered Secret's own data when the
// kustomization generates it, else a stand-in.
func materialize(t *testing.T, o objects, ps corev1.PodSpec, c corev1.Container, env map[string]string) {
	t.Helper()
	var dir string
	for name, val := range env {
		for _, m := range c.VolumeMounts {
			if !strings.HasPrefix(val, strings.TrimSuffix(m.MountPath, "/")+"/") {
				continue
			}
			i := slices.IndexFunc(ps.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
			if i < 0 || ps.Volumes[i].Secret == nil {
				continue // a claim template or a volume of another kind
			}
			vol := ps.Volumes[i]
			key := strings.TrimPrefix(val, strings.TrimSuffix(m.MountPath, "/")+"/")
			keys := externalSecrets[vol.Secret.SecretName]
			if s, ok := o.secrets[vol.Secret.SecretName]; ok {
				keys = map[string]string{}
				for k := range s.Data {
					keys[k] = ""
				}
			}
			if _, ok := keys[key]; !ok {
				t.Errorf("container %s: %s=%s, but Secret %s has no key %s", c.Name, name, val, vol.Secret.SecretName, key)
				continue
			}
			if s, ok := o.secrets[vol.Secret.SecretName]; ok {
				if dir == "" {
					dir = t.TempDir()
				}
				file := filepath.Join(dir, name)
				if err := os.WriteFile(file, s.Data[key], 0o600); err != nil {
					t.Fatal(err)
				}
				env[name] = file
				continue
			}
			file, ok := secretFile(vol.Secret.SecretName, key)
			if !ok {
				t.Errorf("container %s: %s=%s: the test has no stand-in for Secret %s", c.Name, name, val, vol.Secret.SecretName)
				continue
			}
			env[name] = file
		}
	}
}

// rendering is one kustomization to render.
type rendering struct {
	name      string
	dir       string
	overlay   string // dev or prod for the overlays, "" for a base
	namespace string
}

func renderings(t *testing.T) []rendering {
	t.Helper()
	out := []rendering{{name: "postgres", dir: "postgres"}}
	bases, err := filepath.Glob("services/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bases {
		out = append(out, rendering{name: b, dir: b})
	}
	for _, name := range []string{"coordinator", "taskqueue", "metrics", "dashboard", "gateway"} {
		if !slices.Contains(bases, "services/"+name) {
			t.Errorf("no base deploy/k8s/services/%s", name)
		}
	}
	out = append(out,
		rendering{name: "overlays/dev", dir: "overlays/dev", overlay: "dev", namespace: "gaia-dev"},
		rendering{name: "overlays/prod", dir: "overlays/prod", overlay: "prod", namespace: "gaia"},
	)
	// The optional Prometheus Operator component on top of each overlay.
	for _, o := range []string{"dev", "prod"} {
		dir := t.TempDir()
		// kustomize takes only relative paths to other folders.
		abs := func(p string) string {
			a, _ := filepath.Abs(p)
			rel, err := filepath.Rel(dir, a)
			if err != nil {
				t.Fatal(err)
			}
			return rel
		}
		ns := map[string]string{"dev": "gaia-dev", "prod": "gaia"}[o]
		// As an overlay that lists the component would.
		k := fmt.Sprintf("namespace: %s\nresources: [%q]\ncomponents: [%q]\n", ns, abs("overlays/"+o), abs("components/prometheus-operator"))
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, rendering{name: "overlays/" + o + "+prometheus-operator", dir: dir, overlay: o, namespace: ns})
	}
	return out
}

func render(t *testing.T, dir string) []byte {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone // the component test folder lives outside
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// serviceMonitor is the part of the Prometheus Operator's type GAIA uses;
// decoding is strict against it, so an unexpected field fails.
type serviceMonitor struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   metav1ObjectMeta   `json:"metadata"`
	Spec       serviceMonitorSpec `json:"spec"`
}

type metav1ObjectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Endpoints []monitorEndpoint `json:"endpoints"`
}

type monitorEndpoint struct {
	Port     string `json:"port"`
	Path     string `json:"path"`
	Interval string `json:"interval"`
}

// objects is one rendering, decoded.
type objects struct {
	namespaces   []corev1.Namespace
	configMaps   map[string]corev1.ConfigMap
	secrets      map[string]corev1.Secret
	services     []corev1.Service
	statefulSets []appsv1.StatefulSet
	deployments  []appsv1.Deployment
	jobs         []batchv1.Job
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	pdbs         []policyv1.PodDisruptionBudget
	netpols      []networkingv1.NetworkPolicy
	ingresses    []networkingv1.Ingress
	monitors     []serviceMonitor
	namespaced   []string // kind/name/namespace of every namespaced object
}

func decode(t *testing.T, doc []byte) objects {
	t.Helper()
	o := objects{configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}}
	for _, part := range bytes.Split(doc, []byte("\n---\n")) {
		if len(bytes.TrimSpace(part)) == 0 {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(part, &head); err != nil {
			t.Fatalf("object header: %v\n%s", err, part)
		}
		strict := func(into any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(part, into); err != nil {
				t.Errorf("%s %s does not decode strictly as %s: %v", head.Kind, head.Metadata.Name, head.APIVersion, err)
			}
		}
		if head.Kind != "Namespace" {
			o.namespaced = append(o.namespaced, head.Kind+"/"+head.Metadata.Name+" in "+strconv.Quote(head.Metadata.Namespace))
		}
		switch head.APIVersion + " " + head.Kind {
		case "v1 Namespace":
			var x corev1.Namespace
			strict(&x)
			o.namespaces = append(o.namespaces, x)
		case "v1 ConfigMap":
			var x corev1.ConfigMap
			strict(&x)
			o.configMaps[x.Name] = x
		case "v1 Secret":
			var x corev1.Secret
			strict(&x)
			o.secrets[x.Name] = x
		case "v1 Service":
			var x corev1.Service
			strict(&x)
			o.services = append(o.services, x)
		case "apps/v1 StatefulSet":
			var x appsv1.StatefulSet
			strict(&x)
			o.statefulSets = append(o.statefulSets, x)
		case "apps/v1 Deployment":
			var x appsv1.Deployment
			strict(&x)
			o.deployments = append(o.deployments, x)
		case "batch/v1 Job":
			var x batchv1.Job
			strict(&x)
			o.jobs = append(o.jobs, x)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			var x autoscalingv2.HorizontalPodAutoscaler
			strict(&x)
			o.hpas = append(o.hpas, x)
		case "policy/v1 PodDisruptionBudget":
			var x policyv1.PodDisruptionBudget
			strict(&x)
			o.pdbs = append(o.pdbs, x)
		case "networking.k8s.io/v1 NetworkPolicy":
			var x networkingv1.NetworkPolicy
			strict(&x)
			o.netpols = append(o.netpols, x)
		case "networking.k8s.io/v1 Ingress":
			var x networkingv1.Ingress
			strict(&x)
			o.ingresses = append(o.ingresses, x)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			var x serviceMonitor
			strict(&x)
			o.monitors = append(o.monitors, x)
		default:
			t.Errorf("unexpected object %s %s %s: add it to the test's decoder", head.APIVersion, head.Kind, head.Metadata.Name)
		}
	}
	return o
}

// workload is a pod template with where it came from.
type workload struct {
	kind, name  string
	replicas    int32
	labels      map[string]string
	pod         corev1.PodSpec
	annotations map[string]string
}

func (o objects) workloads() []workload {
	var out []workload
	for _, s := range o.statefulSets {
		out = append(out, workload{"StatefulSet", s.Name, replicas(s.Spec.Replicas), s.Spec.Template.Labels, s.Spec.Template.Spec, s.Spec.Template.Annotations})
	}
	for _, d := range o.deployments {
		out = append(out, workload{"Deployment", d.Name, replicas(d.Spec.Replicas), d.Spec.Template.Labels, d.Spec.Template.Spec, d.Spec.Template.Annotations})
	}
	for _, j := range o.jobs {
		out = append(out, workload{"Job", j.Name, 1, j.Spec.Template.Labels, j.Spec.Template.Spec, j.Spec.Template.Annotations})
	}
	return out
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// gaiaBinary is the GAIA binary an image runs ("" for other images).
func gaiaBinary(image string) string {
	name, _, _ := strings.Cut(image, ":")
	for bin := range loaders {
		if name == "gaia/"+bin || strings.HasSuffix(name, "/gaia/"+bin) {
			return bin
		}
	}
	return ""
}

func TestManifests(t *testing.T) {
	for _, r := range renderings(t) {
		t.Run(r.name, func(t *testing.T) {
			o := decode(t, render(t, r.dir))
			if len(o.workloads()) == 0 {
				t.Fatal("renders no workload")
			}
			checkNamespace(t, r, o)
			for _, w := range o.workloads() {
				checkPod(t, r, o, w)
			}
			checkServices(t, o)
			checkCoordinator(t, r, o)
			checkScaling(t, r, o)
			checkNetworkPolicies(t, o)
			checkIngress(t, r, o)
			checkMonitors(t, o)
		})
	}
}

func checkNamespace(t *testing.T, r rendering, o objects) {
	if r.namespace == "" {
		return
	}
	for _, n := range o.namespaced {
		if !strings.HasSuffix(n, strconv.Quote(r.namespace)) {
			t.Errorf("%s: want namespace %s", n, r.namespace)
		}
	}
}

// checkPod holds every container to the hardening and probe rules, and
// GAIA's containers to their configuration.
func checkPod(t *testing.T, r rendering, o objects, w workload) {
	id := w.kind + "/" + w.name
	ps := w.pod
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false (no pod calls the Kubernetes API)", id)
	}
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod must run as a non-root user", id)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccomp profile must be RuntimeDefault", id)
	}
	if len(ps.InitContainers) > 0 {
		t.Errorf("%s: init containers are not expected", id)
	}
	for _, c := range ps.Containers {
		cid := id + " container " + c.Name
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: no securityContext", cid)
		default:
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation must be false", cid)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem must be true", cid)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", cid)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop ALL and add none", cid)
			}
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[res]
			lim, okLim := c.Resources.Limits[res]
			if !okReq || !okLim {
				t.Errorf("%s: %s request and limit required", cid, res)
			} else if req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %s above limit %s", cid, res, req.String(), lim.String())
			}
		}
		name, tag, ok := strings.Cut(c.Image, ":")
		if !ok || tag == "" || tag == "latest" || strings.Contains(tag, "/") || name == "" {
			t.Errorf("%s: image %q must name a release tag, not latest", cid, c.Image)
		}
		if c.ImagePullPolicy == corev1.PullAlways {
			t.Errorf("%s: imagePullPolicy Always with a pinned tag", cid)
		}
		if w.kind != "Job" {
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: liveness and readiness probes required", cid)
			}
			for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
				checkProbePort(t, cid, c, p)
			}
		}
		// Secret files not readable by everyone need the pod's group.
		for _, v := range ps.Volumes {
			if v.Secret != nil && v.Secret.DefaultMode != nil && *v.Secret.DefaultMode&0o004 == 0 &&
				(psc == nil || psc.FSGroup == nil) && slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == v.Name }) {
				t.Errorf("%s: Secret volume %s is readable by its group only, and the pod sets no fsGroup", cid, v.Name)
			}
		}
		// Writable places must be volumes: the root filesystem is read-only.
		for _, m := range c.VolumeMounts {
			if !slices.ContainsFunc(ps.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) &&
				!hasClaimTemplate(o, w, m.Name) {
				t.Errorf("%s: mount %s has no volume", cid, m.Name)
			}
		}
		bin := gaiaBinary(c.Image)
		if bin == "" {
			continue
		}
		if w.kind != "Job" && c.Name != bin {
			t.Errorf("%s: runs image %s; name the container after its binary", cid, c.Image)
		}
		checkEnv(t, r, o, w, c, bin)
	}
}

func hasClaimTemplate(o objects, w workload, name string) bool {
	for _, s := range o.statefulSets {
		if s.Name == w.name && slices.ContainsFunc(s.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == name }) {
			return true
		}
	}
	return false
}

func checkProbePort(t *testing.T, cid string, c corev1.Container, p *corev1.Probe) {
	if p == nil {
		return
	}
	declared := func(port int32, name string) bool {
		return slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return (port != 0 && cp.ContainerPort == port) || (name != "" && cp.Name == name)
		})
	}
	switch {
	case p.GRPC != nil:
		if !declared(p.GRPC.Port, "") {
			t.Errorf("%s: gRPC probe on undeclared port %d", cid, p.GRPC.Port)
		}
	case p.HTTPGet != nil:
		if !declared(p.HTTPGet.Port.IntVal, p.HTTPGet.Port.StrVal) {
			t.Errorf("%s: HTTP probe on undeclared port %s", cid, p.HTTPGet.Port.String())
		}
	case p.Exec != nil:
	default:
		t.Errorf("%s: probe without a handler", cid)
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// podEnv is a container's environment as the kubelet builds it for the pod
// named podName: envFrom first, then env in order, each $(VAR) expanded
// from what is defined so far.
func podEnv(t *testing.T, o objects, c corev1.Container, podName, namespace string) (env map[string]string, referenced map[string]bool) {
	env, referenced = map[string]string{}, map[string]bool{}
	secret := func(name string, optional bool) map[string]string {
		if s, ok := o.secrets[name]; ok {
			out := map[string]string{}
			for k, v := range s.Data {
				out[k] = string(v)
			}
			for k, v := range s.StringData {
				out[k] = v
			}
			return out
		}
		if s, ok := externalSecrets[name]; ok {
			return s
		}
		if !optional {
			t.Errorf("container %s: Secret %s is neither rendered nor one of the documented external Secrets", c.Name, name)
		}
		return nil
	}
	for _, src := range c.EnvFrom {
		switch {
		case src.ConfigMapRef != nil:
			cm, ok := o.configMaps[src.ConfigMapRef.Name]
			if !ok {
				t.Errorf("container %s: ConfigMap %s not rendered", c.Name, src.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[src.Prefix+k] = v
			}
		case src.SecretRef != nil:
			for k, v := range secret(src.SecretRef.Name, src.SecretRef.Optional != nil && *src.SecretRef.Optional) {
				env[src.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				v = podName
			case "metadata.namespace":
				v = namespace
			default:
				t.Errorf("container %s: %s from unexpected field %s", c.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			val, ok := secret(ref.Name, false)[ref.Key]
			if !ok {
				t.Errorf("container %s: %s from Secret %s key %s, which it does not have", c.Name, e.Name, ref.Name, ref.Key)
			}
			v = val
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v = o.configMaps[ref.Name].Data[ref.Key]
		}
		v = varRef.ReplaceAllStringFunc(v, func(m string) string {
			name := varRef.FindStringSubmatch(m)[1]
			referenced[name] = true
			if val, ok := env[name]; ok {
				return val
			}
			t.Errorf("container %s: %s refers to $(%s), not defined before it", c.Name, e.Name, name)
			return m
		})
		env[e.Name] = v
	}
	return env, referenced
}

// checkEnv: every variable is one the binary reads (or a helper that
// another variable refers to), and the binary accepts the values.
func checkEnv(t *testing.T, r rendering, o objects, w workload, c corev1.Container, bin string) {
	known := map[string]bool{}
	probe := config.NewLoader(func(string) (string, bool) { return "", false })
	process.LoadCommon(probe, "json")
	loaders[bin](probe)
	for _, v := range probe.Vars() {
		known[v.Name] = true
	}
	ns := r.namespace
	if ns == "" {
		ns = "default"
	}
	env, referenced := podEnv(t, o, c, w.name+"-0", ns)
	materialize(t, o, w.pod, c, env)
	for name := range env {
		if !known[name] && !referenced[name] {
			t.Errorf("%s/%s container %s: %s is not a variable %s reads", w.kind, w.name, c.Name, name, bin)
		}
	}
	l := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	process.LoadCommon(l, "json")
	authCfg := loaders[bin](l)
	if err := l.Err(); err != nil {
		t.Errorf("%s/%s container %s: %s refuses its configuration: %v", w.kind, w.name, c.Name, bin, err)
	} else if authCfg != nil {
		checkAuth(t, fmt.Sprintf("%s/%s container %s", w.kind, w.name, c.Name), bin, *authCfg)
	}
	// Listen addresses are declared container ports.
	for name, val := range env {
		if !strings.HasSuffix(name, "_LISTEN_ADDR") && !strings.HasSuffix(name, "_METRICS_ADDR") && name != "CLUSTER_BIND_ADDR" {
			continue
		}
		if !known[name] {
			continue
		}
		p, err := strconv.Atoi(val[strings.LastIndex(val, ":")+1:])
		if err != nil || !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return int(cp.ContainerPort) == p }) {
			t.Errorf("%s/%s container %s: %s=%s is not a declared container port", w.kind, w.name, c.Name, name, val)
		}
	}
	checkGRPCTLS(t, r, w, c, bin, env)
	if a := w.annotations["prometheus.io/port"]; a != "" {
		p, _ := strconv.Atoi(a)
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return int(cp.ContainerPort) == p }) {
			t.Errorf("%s/%s: scrape annotation port %s is not a container port", w.kind, w.name, a)
		}
	}
}

// devCredentialMargin: the dev overlay's committed credentials must stay
// valid this long, so that they are remade (auth/generate.sh) before the
// overlay stops working.
const devCredentialMargin = 30 * 24 * time.Hour

// checkAuth: the service starts with its credentials as its main builds
// them (auth.NewRuntime reads the public keys and its own credential), the
// coordinator holds a signing key whose public key the others accept, and
// each service presents a valid credential of the role its calls need.
func checkAuth(t *testing.T, id, bin string, cfg auth.Config) {
	if cfg.Off {
		t.Errorf("%s: GAIA_AUTH=off lets every call through; never in a manifest", id)
		return
	}
	if cfg.PublicKeysFile == "" {
		t.Errorf("%s: no AUTH_PUBLIC_KEYS_FILE: mount the Secret gaia-auth-public-keys", id)
		return
	}
	rt, err := auth.NewRuntime(cfg, nil, nil)
	if err != nil {
		t.Errorf("%s: %s would not start: %v", id, bin, err)
		return
	}
	if bin == "coordinator" {
		if cfg.SigningKeyFile == "" {
			t.Errorf("%s: no AUTH_SIGNING_KEY_FILE: the coordinator could not issue credentials", id)
		} else if key, err := auth.ReadPrivateKey(cfg.SigningKeyFile); err != nil {
			t.Errorf("%s: AUTH_SIGNING_KEY_FILE: %v", id, err)
		} else if kid := auth.NewSigner(key).KeyID(); !rt.Verifier().KnowsKey(kid) {
			t.Errorf("%s: the signing key (kid %s) is not in AUTH_PUBLIC_KEYS_FILE; the coordinator would refuse to start", id, kid)
		}
	} else if cfg.SigningKeyFile != "" {
		t.Errorf("%s: AUTH_SIGNING_KEY_FILE belongs on the coordinators only", id)
	}
	role, ok := presents[bin]
	switch {
	case !ok && cfg.TokenFile != "":
		t.Errorf("%s: %s presents no credential of its own; AUTH_TOKEN_FILE is unused", id, bin)
	case !ok:
	case rt.Token() == "":
		t.Errorf("%s: no AUTH_TOKEN_FILE: %s must present a %s credential (Secret %s)", id, bin, role, map[bool]string{true: "gaia-coordinator-token", false: "gaia-service-token"}[bin == "coordinator"])
	default:
		p, err := rt.Verifier().Verify(rt.Token())
		switch {
		case err != nil:
			t.Errorf("%s: AUTH_TOKEN_FILE does not verify against AUTH_PUBLIC_KEYS_FILE: %v", id, err)
		case p.Role != role:
			t.Errorf("%s: AUTH_TOKEN_FILE holds a credential of role %s; %s needs role %s", id, p.Role, bin, role)
		case time.Until(p.ExpiresAt) < devCredentialMargin:
			t.Errorf("%s: AUTH_TOKEN_FILE expires %s: remake the dev credentials (deploy/k8s/overlays/dev/auth/generate.sh)", id, p.ExpiresAt.Format(time.DateOnly))
		}
	}
}

// checkServices: every Service selects a workload and targets its ports.
func checkServices(t *testing.T, o objects) {
	for _, s := range o.services {
		var match []workload
		for _, w := range o.workloads() {
			if len(s.Spec.Selector) > 0 && selects(s.Spec.Selector, w.labels) {
				match = append(match, w)
			}
		}
		if len(match) == 0 {
			t.Errorf("Service %s selects no workload", s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, w := range match {
				ok := false
				for _, c := range w.pod.Containers {
					ok = ok || slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
						switch {
						case p.TargetPort.StrVal != "":
							return cp.Name == p.TargetPort.StrVal
						case p.TargetPort.IntVal != 0:
							return cp.ContainerPort == p.TargetPort.IntVal
						}
						return cp.ContainerPort == p.Port
					})
				}
				if !ok {
					t.Errorf("Service %s port %s targets %s, which %s/%s does not declare", s.Name, p.Name, p.TargetPort.String(), w.kind, w.name)
				}
			}
		}
	}
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkCoordinator: the StatefulSet gives every pod its DNS name as node id
// and advertise addresses, lists every pod for discovery, names pod 0 as the
// only one that may bootstrap, keeps a volume per pod, probes readiness
// through the readiness health service and never co-locates two voters.
func checkCoordinator(t *testing.T, r rendering, o objects) {
	var sts *appsv1.StatefulSet
	for i := range o.statefulSets {
		if o.statefulSets[i].Name == "coordinator" {
			sts = &o.statefulSets[i]
		}
	}
	if sts == nil {
		return
	}
	n := replicas(sts.Spec.Replicas)
	switch r.overlay {
	case "prod":
		if n != 3 {
			t.Errorf("prod runs %d coordinators, want 3", n)
		}
	case "dev":
		if n != 1 {
			t.Errorf("dev runs %d coordinators, want 1", n)
		}
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("coordinator podManagementPolicy %q: pod 0 waits for the others before bootstrapping, so they must start together (Parallel)", sts.Spec.PodManagementPolicy)
	}
	var headless *corev1.Service
	for i := range o.services {
		if o.services[i].Name == sts.Spec.ServiceName {
			headless = &o.services[i]
		}
	}
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Fatalf("coordinator serviceName %q must be a rendered headless Service publishing not-ready pods", sts.Spec.ServiceName)
	}
	ps := sts.Spec.Template.Spec
	c := ps.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil || c.ReadinessProbe.GRPC.Service == nil || *c.ReadinessProbe.GRPC.Service != coordinator.ReadinessService {
		t.Errorf("coordinator readiness probe must be gRPC health of service %q", coordinator.ReadinessService)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.GRPC == nil || c.LivenessProbe.GRPC.Service == nil || *c.LivenessProbe.GRPC.Service != coordinator.LivenessService {
		t.Errorf("coordinator liveness probe must be gRPC health of service %q", coordinator.LivenessService)
	}
	ns := r.namespace
	if ns == "" {
		ns = "default"
	}
	podDNS := func(i int32) string { return fmt.Sprintf("%s-%d.%s.%s.svc", sts.Name, i, headless.Name, ns) }
	var discovery []string
	for i := range n {
		discovery = append(discovery, podDNS(i)+":7001")
	}
	for i := range n {
		env, _ := podEnv(t, o, c, fmt.Sprintf("%s-%d", sts.Name, i), ns)
		materialize(t, o, ps, c, env)
		l := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		cfg := coordinator.LoadConfig(l)
		if err := l.Err(); err != nil {
			t.Fatalf("coordinator-%d: %v", i, err)
		}
		if n > 1 && !cfg.Cluster.Enabled {
			t.Errorf("coordinator-%d: CLUSTER_ENABLED must be true with %d replicas", i, n)
		}
		if cfg.Cluster.Enabled && !cfg.Cluster.TLS.Enabled() {
			t.Errorf("coordinator-%d: no Raft member certificate", i)
		}
		if cfg.Cluster.NodeID != podDNS(i) {
			t.Errorf("coordinator-%d: node id %q, want its DNS name %q", i, cfg.Cluster.NodeID, podDNS(i))
		}
		if cfg.Cluster.AdvertiseAddr != podDNS(i)+":8300" || cfg.AdvertiseAddr != podDNS(i)+":7001" {
			t.Errorf("coordinator-%d: advertises %s (Raft) and %s (gRPC), want its DNS name", i, cfg.Cluster.AdvertiseAddr, cfg.AdvertiseAddr)
		}
		if cfg.Cluster.Bootstrap != (i == 0) {
			t.Errorf("coordinator-%d: bootstrap %v; only pod 0 may bootstrap", i, cfg.Cluster.Bootstrap)
		}
		// Every pod's name, found through DNS: no list to keep in step
		// with the replica count.
		if len(cfg.Cluster.DiscoveryNodes) > 0 {
			t.Errorf("coordinator-%d: CLUSTER_DISCOVERY_NODES %v is a list to edit on every scale; use CLUSTER_DISCOVERY_PATTERN", i, cfg.Cluster.DiscoveryNodes)
		}
		var found []string
		for ord := range n {
			found = append(found, strings.Replace(cfg.Cluster.DiscoveryPattern, coordinator.OrdinalPlaceholder, strconv.Itoa(int(ord)), 1))
		}
		if !slices.Equal(found, discovery) {
			t.Errorf("coordinator-%d: CLUSTER_DISCOVERY_PATTERN %q names %v for ordinals 0..%d, want every pod %v", i, cfg.Cluster.DiscoveryPattern, found, n-1, discovery)
		}
		if n > 1 && cfg.Cluster.DeadServerGrace <= 0 {
			t.Errorf("coordinator-%d: CLUSTER_DEAD_SERVER_GRACE unset: a pod deleted for good would stay a voter", i)
		}
		if grace := ps.TerminationGracePeriodSeconds; grace == nil || float64(*grace) <= (cfg.ShutdownTimeout.Seconds()+5) {
			t.Errorf("coordinator: terminationGracePeriodSeconds must leave room for the leadership hand-over and SHUTDOWN_TIMEOUT (%v)", cfg.ShutdownTimeout)
		}
		dataMounted := false
		for _, m := range c.VolumeMounts {
			if hasClaimTemplate(o, workload{name: sts.Name}, m.Name) && strings.HasPrefix(cfg.Cluster.DataDir+"/", strings.TrimSuffix(m.MountPath, "/")+"/") {
				dataMounted = true
			}
		}
		if !dataMounted {
			t.Errorf("coordinator-%d: CLUSTER_DATA_DIR %s is not on a volume claim template", i, cfg.Cluster.DataDir)
		}
	}
	if n > 1 {
		aa := ps.Affinity
		if aa == nil || aa.PodAntiAffinity == nil || !slices.ContainsFunc(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, func(term corev1.PodAffinityTerm) bool {
			return term.TopologyKey == "kubernetes.io/hostname" && term.LabelSelector != nil && selects(term.LabelSelector.MatchLabels, sts.Spec.Template.Labels)
		}) {
			t.Errorf("coordinator: two voters may share a node (required pod anti-affinity on kubernetes.io/hostname)")
		}
	}
	// The budget keeps a quorum: at least a majority stays up.
	quorum := n/2 + 1
	found := false
	for _, p := range o.pdbs {
		if p.Spec.Selector == nil || !selects(p.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
			continue
		}
		found = true
		switch {
		case p.Spec.MinAvailable != nil:
			if p.Spec.MinAvailable.IntVal < quorum || p.Spec.MinAvailable.IntVal >= n {
				t.Errorf("coordinator PDB minAvailable %s: want a quorum (%d) of %d, and below %d so drains can proceed", p.Spec.MinAvailable.String(), quorum, n, n)
			}
		case p.Spec.MaxUnavailable != nil:
			if n-p.Spec.MaxUnavailable.IntVal < quorum {
				t.Errorf("coordinator PDB maxUnavailable %s loses the quorum of %d", p.Spec.MaxUnavailable.String(), n)
			}
		}
	}
	if n > 1 && !found {
		t.Errorf("coordinator: no PodDisruptionBudget for %d voters", n)
	}
}

// checkScaling: every Deployment has an HPA and a PDB that lets a drain
// proceed.
func checkScaling(t *testing.T, r rendering, o objects) {
	for _, d := range o.deployments {
		hpa := slices.IndexFunc(o.hpas, func(h autoscalingv2.HorizontalPodAutoscaler) bool {
			return h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name
		})
		if hpa < 0 {
			t.Errorf("Deployment %s has no HorizontalPodAutoscaler", d.Name)
		} else if h := o.hpas[hpa]; h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas || len(h.Spec.Metrics) == 0 {
			t.Errorf("HPA %s: want minReplicas ≤ maxReplicas and a metric", h.Name)
		} else if r.overlay == "prod" && *h.Spec.MinReplicas < 2 {
			t.Errorf("HPA %s: production keeps at least 2 replicas", h.Name)
		}
		if !slices.ContainsFunc(o.pdbs, func(p policyv1.PodDisruptionBudget) bool {
			return p.Spec.Selector != nil && selects(p.Spec.Selector.MatchLabels, d.Spec.Template.Labels) && p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.IntVal >= 1
		}) {
			t.Errorf("Deployment %s has no PodDisruptionBudget with maxUnavailable ≥ 1", d.Name)
		}
	}
	for _, h := range o.hpas {
		if !slices.ContainsFunc(o.deployments, func(d appsv1.Deployment) bool { return d.Name == h.Spec.ScaleTargetRef.Name }) {
			t.Errorf("HPA %s scales %s, which is not rendered", h.Name, h.Spec.ScaleTargetRef.Name)
		}
	}
}

// checkNetworkPolicies: every workload is selected by a policy for both
// directions; only the gateway admits traffic from anywhere; each GAIA
// service's egress to other pods goes only where DESIGN.md says it talks.
func checkNetworkPolicies(t *testing.T, o objects) {
	for _, w := range o.workloads() {
		name := w.labels["app.kubernetes.io/name"]
		var pols []networkingv1.NetworkPolicy
		for _, p := range o.netpols {
			if selects(p.Spec.PodSelector.MatchLabels, w.labels) && len(p.Spec.PodSelector.MatchLabels) > 0 {
				pols = append(pols, p)
			}
		}
		if len(pols) == 0 {
			t.Errorf("%s/%s is selected by no NetworkPolicy of its own", w.kind, w.name)
			continue
		}
		for _, p := range pols {
			if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
				t.Errorf("NetworkPolicy %s must govern both Ingress and Egress", p.Name)
			}
			for _, in := range p.Spec.Ingress {
				if len(in.From) == 0 && name != "gateway" {
					t.Errorf("NetworkPolicy %s admits %s from anywhere; only the gateway is reachable from outside", p.Name, name)
				}
			}
			allowed, gaia := talksTo[name]
			if !gaia {
				continue
			}
			for _, out := range p.Spec.Egress {
				for _, to := range out.To {
					if to.PodSelector == nil {
						t.Errorf("NetworkPolicy %s: egress to a non-pod peer", p.Name)
						continue
					}
					if to.PodSelector.MatchLabels["k8s-app"] == "kube-dns" {
						continue
					}
					peer := to.PodSelector.MatchLabels["app.kubernetes.io/name"]
					if !slices.Contains(allowed, peer) {
						t.Errorf("NetworkPolicy %s lets %s reach %q; DESIGN.md says it talks to %v", p.Name, name, peer, allowed)
					}
				}
				if len(out.To) == 0 && (len(out.Ports) == 0 || slices.ContainsFunc(out.Ports, func(p networkingv1.NetworkPolicyPort) bool {
					return p.Port == nil || p.Port.IntVal != 5432
				})) {
					t.Errorf("NetworkPolicy %s: egress to any address is for PostgreSQL (5432) only", p.Name)
				}
			}
		}
	}
}

func checkIngress(t *testing.T, r rendering, o objects) {
	for _, ing := range o.ingresses {
		for _, rule := range ing.Spec.Rules {
			for _, path := range rule.HTTP.Paths {
				if b := path.Backend.Service; b == nil || b.Name != "gateway" {
					t.Errorf("Ingress %s routes to something other than the gateway", ing.Name)
				}
			}
		}
		if r.overlay == "prod" && len(ing.Spec.TLS) == 0 {
			t.Errorf("Ingress %s: production serves HTTPS", ing.Name)
		}
	}
}

func checkMonitors(t *testing.T, o objects) {
	for _, m := range o.monitors {
		ok := false
		for _, s := range o.services {
			if selects(m.Spec.Selector.MatchLabels, s.Labels) && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool {
				return slices.ContainsFunc(m.Spec.Endpoints, func(e monitorEndpoint) bool { return e.Port == p.Name })
			}) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("ServiceMonitor %s finds no Service with its port", m.Metadata.Name)
		}
	}
}

// checkGRPCTLS: in prod every GAIA service serves and dials gRPC over TLS
// (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE, which the loader has already
// read and parsed), and a gRPC probe never points at a TLS port: the
// kubelet's gRPC probes speak plaintext only, so they must go to the
// plaintext health-only port (<SERVICE>_HEALTH_LISTEN_ADDR).
func checkGRPCTLS(t *testing.T, r rendering, w workload, c corev1.Container, bin string, env map[string]string) {
	if w.kind == "Job" {
		return
	}
	id := fmt.Sprintf("%s/%s container %s", w.kind, w.name, c.Name)
	tlsOn := env[tlsconfig.CertFileVar] != "" && env[tlsconfig.KeyFileVar] != "" && env[tlsconfig.CAFileVar] != ""
	if r.overlay == "prod" && !tlsOn {
		t.Errorf("%s: prod must set %s, %s and %s (TLS on every gRPC hop)", id, tlsconfig.CertFileVar, tlsconfig.KeyFileVar, tlsconfig.CAFileVar)
	}
	if !tlsOn {
		return
	}
	port := func(addr string) int32 {
		p, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
		return int32(p)
	}
	healthVar := strings.ToUpper(bin) + "_HEALTH_LISTEN_ADDR"
	for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.GRPC == nil {
			continue
		}
		if h := env[healthVar]; h == "" || port(h) != p.GRPC.Port {
			t.Errorf("%s: gRPC probe on port %d, which serves TLS; the kubelet's gRPC probes speak plaintext, so probe %s (%q)", id, p.GRPC.Port, healthVar, h)
		}
	}
}
