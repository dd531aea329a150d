// Package kubernetes is the Kubernetes engine: each command of a job runs
// in a pod of its own, created through the Kubernetes API with client-go,
// in the job's namespace, as its service account, from its image, its
// environment in a Secret the engine creates for that command and deletes
// after it. The pod's log is streamed as the command's output and its
// container's exit code is the command's.
//
// A pod per command, not one per job, for the reason the Docker engine has
// a container per command: stopping a command (timeout, Cancel, the caller
// going away) is deleting its pod, which takes every process it started,
// and the engine needs no pods/exec right (exec through the kubelet does
// not kill what the command started). The job's files pass from one
// command to the next in a PersistentVolumeClaim when workspace_size is
// set.
//
// Nothing leaks: everything the engine creates for a job hangs, through
// owner references, from the job's anchor (a ConfigMap), which hangs from
// the engine process's Lease in that namespace. The engine renews its
// Lease while it lives; at start (and at the first use of a namespace) it
// deletes the Leases that are no longer renewed, and Kubernetes' garbage
// collector deletes what hung from them. Run in a pod (PALVELLA_POD_NAME
// and PALVELLA_POD_UID set by the downward API), the Lease in the server's
// own namespace also hangs from the server's pod.
package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Name is the plugin's name.
const Name = "engine-kubernetes"

// Version is the plugin's version.
const Version = "0.1.0"

// TypeName is the engine type this plugin provides.
const TypeName = "kubernetes"

// Labels on everything the engine creates.
const (
	labelEngine    = "palvella.dev/engine"
	labelOwner     = "palvella.dev/owner"
	labelWorkspace = "palvella.dev/workspace"
	labelRole      = "palvella.dev/role"
	labelExec      = "palvella.dev/exec"
	// Which job (values cut to what a label holds; the annotations below
	// keep them whole).
	labelNamespace = "palvella.dev/namespace"
	labelPipeline  = "palvella.dev/pipeline"
	labelRun       = "palvella.dev/run"
	labelJob       = "palvella.dev/job"
	annotationHost = "palvella.dev/host"
)

// Environment variables a server running in a pod sets from the downward
// API, so that its Leases hang from its pod.
const (
	EnvPodName = "PALVELLA_POD_NAME"
	EnvPodUID  = "PALVELLA_POD_UID"
)

// config is the plugin's configuration: the defaults of the type's
// parameters and the plugin's own settings.
type config struct {
	params params
	// grace is the pods' termination grace period when they are deleted.
	grace time.Duration
	// lease is how long the engine's Lease lasts without renewal; it is
	// renewed every third of it.
	lease time.Duration
}

func defaultConfig() config {
	return config{params: defaultParams(), grace: 2 * time.Second, lease: 30 * time.Second}
}

// ownKeys are the configuration keys that are not type parameters.
var ownKeys = map[string]bool{"kill_grace": true, "lease_duration": true}

// Plugin is the Kubernetes engine. Its zero value is not usable; call New.
type Plugin struct {
	log   hclog.Logger
	owner string
	host  string

	mu         sync.Mutex
	cfg        config
	workspaces map[string]*workspace
	clusters   map[string]*cluster
}

var _ engine.Engine = (*Plugin)(nil)

// New returns a Kubernetes engine with the default configuration.
func New() *Plugin {
	hostname, _ := os.Hostname()
	return &Plugin{
		log:        sdk.Logger(Name),
		owner:      randomID(16),
		host:       hostname,
		cfg:        defaultConfig(),
		workspaces: map[string]*workspace{},
		clusters:   map[string]*cluster{},
	}
}

// Serve runs the plugin as a go-plugin server.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	// A host that stops answering (frozen) gets its commands stopped
	// (engine.HostKeepalive).
	opts = append([]sdk.ServeOption{engine.HostKeepalive()}, opts...)
	return sdk.ServeWith(p, []sdk.Service{engine.Service(p)}, opts...)
}

// Owner is the ID this plugin process labels what it creates with.
func (p *Plugin) Owner() string { return p.owner }

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(ctx context.Context) (*sdk.Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", Name, err)
	}
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Runs each command of a job in a pod of its own on a Kubernetes cluster, its environment in a Secret made for it.",
		Categories:       []sdk.Category{sdk.CategoryEngine},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: paramsSchema(map[string]any{
			"kill_grace":     str("Termination grace period of a stopped command's pod, as a Go duration (whole seconds are used). Default 2s."),
			"lease_duration": str("How long the engine's Lease lasts without renewal before another engine may delete what this one left, as a Go duration. Default 30s."),
		}),
		Types: []sdk.TypeInfo{{
			Category:     sdk.CategoryEngine,
			Name:         TypeName,
			Description:  "Commands run in pods of an image on a Kubernetes cluster, one pod per command, isolated from the server.",
			ParamsSchema: paramsSchema(nil),
		}},
	}, nil
}

// Configure validates and applies the configuration, then, when the
// configured cluster can be reached, deletes what stopped engines left in
// the default namespace. A cluster that cannot be reached is a warning:
// jobs fail with the reason when they start.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("configure %s: %w", Name, err)
	}
	cfg, diags := parseConfig(req.Config)
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	cl, err := p.clusterFor(cfg.params)
	if err == nil {
		_, err = cl.namespace(ctx, cl.defaultNamespace(cfg.params))
	}
	if err != nil {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Field: "config.kubeconfig",
			Summary: "the Kubernetes cluster cannot be used now; jobs on this engine will fail until it can", Detail: err.Error()})
	}
	return &sdk.ConfigureResponse{Diagnostics: diags}, nil
}

func parseConfig(raw map[string]any) (config, []sdk.Diagnostic) {
	cfg := defaultConfig()
	params, diags := parseParams(raw, cfg.params, "config.", func(k string) bool { return ownKeys[k] })
	cfg.params = params
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if !ownKeys[k] {
			continue
		}
		s, _ := raw[k].(string)
		d, err := time.ParseDuration(s)
		min := time.Duration(0)
		if k == "lease_duration" {
			min = time.Second
		}
		if err != nil || d < min {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + k,
				Summary: fmt.Sprintf("must be a duration of at least %s such as \"2s\" (got %v)", min, raw[k])})
			continue
		}
		if k == "kill_grace" {
			cfg.grace = d
		} else {
			cfg.lease = d
		}
	}
	return cfg, diags
}

func (p *Plugin) config() config {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg := p.cfg
	cfg.params = cfg.params.clone()
	return cfg
}

// clusterFor returns the client of the cluster of a job's parameters,
// making it on first use.
func (p *Plugin) clusterFor(pr params) (*cluster, error) {
	key := pr.kubeconfig + "\x00" + pr.context
	p.mu.Lock()
	cl := p.clusters[key]
	p.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	rc, inCluster, err := restConfig(pr)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: client of %s: %w", rc.Host, err)
	}
	cl = &cluster{p: p, cs: cs, host: rc.Host, inCluster: inCluster, leases: map[string]*lease{}}
	p.mu.Lock()
	if other := p.clusters[key]; other != nil {
		cl = other
	} else {
		p.clusters[key] = cl
	}
	p.mu.Unlock()
	return cl, nil
}

// serviceAccountDir is where Kubernetes mounts a pod's service account.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// restConfig finds the cluster: the kubeconfig file (and context) given,
// else in-cluster credentials in a pod, else $KUBECONFIG or
// ~/.kube/config.
func restConfig(pr params) (*rest.Config, bool, error) {
	if pr.kubeconfig == "" && pr.context == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, false, fmt.Errorf("kubernetes engine: in-cluster credentials: %w", err)
		}
		return rc, true, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if pr.kubeconfig != "" {
		rules.ExplicitPath = pr.kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: pr.context}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		where := pr.kubeconfig
		if where == "" {
			where = "$KUBECONFIG or ~/.kube/config"
		}
		return nil, false, sdk.Errorf(sdk.ErrFailedPrecondition, "kubeconfig", "no usable Kubernetes cluster in %s: %v", where, err)
	}
	return rc, false, nil
}

// defaultNamespace is the namespace of jobs that name none: the
// server's own in a pod, else default.
func (cl *cluster) defaultNamespace(pr params) string {
	if pr.namespace != "" {
		return pr.namespace
	}
	if cl.inCluster {
		if b, err := os.ReadFile(filepath.Join(serviceAccountDir, "namespace")); err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b))
		}
	}
	return "default"
}

func randomID(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}
