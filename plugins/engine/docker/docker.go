// Package docker is the Docker engine: each job gets a container of its
// image with a workspace that is a Docker volume of its own mounted (and,
// by default, a network of its own), and each command of the job runs in
// that container as an exec, through the Docker Engine API (never the
// docker CLI). A command in another image runs in a container of its own
// that joins the job container's PID namespace.
//
// Stopping a command (its timeout, Cancel, the caller going away) stops
// every process it started, and no process of one step survives into the
// next, as on the local engine: the processes of a command carry a marker
// in their environment (jobexec.go). The workspace volume carries the
// files from one command to the next. Teardown stops the commands and
// leaves the removal of the container, network and volume to the
// background (Drain waits for it).
//
// Everything the engine creates carries the labels palvella.dev/engine,
// palvella.dev/owner (the plugin process) and palvella.dev/host (its
// machine). A plugin process holds a lock file for its owner ID while it
// runs; at start (Configure, and the first use of another daemon) it
// removes the containers, networks and volumes of this machine's owners
// whose lock no process holds any more: what a killed plugin left.
package docker

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/internal/ownerlock"
	engineparams "github.com/palvella/palvella/plugins/engine/internal/params"
)

// Name is the plugin's name.
const Name = "engine-docker"

// Version is the plugin's version.
const Version = "0.1.0"

// TypeName is the engine type this plugin provides.
const TypeName = "docker"

// Labels on everything the engine creates.
const (
	labelEngine    = "palvella.dev/engine"
	labelOwner     = "palvella.dev/owner"
	labelHost      = "palvella.dev/host"
	labelState     = "palvella.dev/state" // ownerlock.DirID of the owner's state directory: a sweep removes only what carries its own
	labelWorkspace = "palvella.dev/workspace"
	labelNamespace = "palvella.dev/namespace"
	labelPipeline  = "palvella.dev/pipeline"
	labelRun       = "palvella.dev/run"
	labelJob       = "palvella.dev/job"
	// labelRole tells the job's holder ("job") from its commands'
	// containers ("command").
	labelRole = "palvella.dev/role"
)

// config is the plugin's configuration: the defaults of the type's
// parameters and the plugin's own settings.
type config struct {
	params params
	// stateDir holds the owner lock files.
	stateDir string
	// dockerConfig is the Docker CLI's configuration directory, where
	// contexts are found.
	dockerConfig string
	// grace is how long a stopped container has between SIGTERM and
	// SIGKILL.
	grace time.Duration
}

func defaultConfig() config {
	dc := os.Getenv("DOCKER_CONFIG")
	if dc == "" {
		if home, err := os.UserHomeDir(); err == nil {
			dc = filepath.Join(home, ".docker")
		}
	}
	return config{
		params:       defaultParams(),
		stateDir:     filepath.Join(os.TempDir(), "palvella-engine-docker"),
		dockerConfig: dc,
		grace:        2 * time.Second,
	}
}

// ownKeys are the configuration keys that are not type parameters.
var ownKeys = map[string]bool{"state_dir": true, "docker_config": true, "kill_grace": true}

// Plugin is the Docker engine. Its zero value is not usable; call New.
type Plugin struct {
	log   hclog.Logger
	owner string
	host  string

	mu         sync.Mutex
	cfg        config
	workspaces map[string]*workspace
	daemons    map[string]*daemon
	locks      ownerlock.Locks // owner lock per state directory
	// removals counts the workspaces Teardown is removing in the
	// background.
	removals sync.WaitGroup
}

var _ engine.Engine = (*Plugin)(nil)

// New returns a Docker engine with the default configuration: the daemon
// of DOCKER_HOST, or /var/run/docker.sock.
func New() *Plugin {
	hostname, _ := os.Hostname()
	return &Plugin{
		log:        sdk.Logger(Name),
		owner:      randomID(16),
		host:       hostname,
		cfg:        defaultConfig(),
		workspaces: map[string]*workspace{},
		daemons:    map[string]*daemon{},
	}
}

// Serve runs the plugin as a go-plugin server.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	// A host that stops answering (frozen) gets its commands stopped
	// (engine.HostKeepalive).
	opts = append([]sdk.ServeOption{engine.HostKeepalive()}, opts...)
	code := sdk.ServeWith(p, []sdk.Service{engine.Service(p)}, opts...)
	// The workspaces torn down last are still being removed: a host that
	// stops the plugin gives it a moment to finish, and the next start's
	// sweep removes what is left.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.Drain(ctx)
	return code
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
		Description:      "Runs each job's commands in containers of the job's image on a Docker daemon, the workspace in a volume of the job's own.",
		Categories:       []sdk.Category{sdk.CategoryEngine},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: paramsSchema(map[string]any{
			"state_dir":     str("Directory of the lock files that tell live engine processes from killed ones. Default: palvella-engine-docker in the system's temporary directory."),
			"docker_config": str("The Docker CLI's configuration directory, where contexts are read. Default: $DOCKER_CONFIG or ~/.docker."),
			"kill_grace":    str("How long a stopped container has to exit after SIGTERM before it gets SIGKILL, as a Go duration (whole seconds are used). Default 2s."),
		}),
		Types: []sdk.TypeInfo{{
			Category:     sdk.CategoryEngine,
			Name:         TypeName,
			Description:  "Commands run in containers of an image on a Docker daemon, isolated from the server and from other jobs.",
			ParamsSchema: paramsSchema(nil),
		}},
	}, nil
}

// Configure validates and applies the configuration, then removes what
// killed engine processes of this machine left on the configured daemon.
// A daemon that cannot be reached is a warning, not an error: jobs fail
// with the reason when they start.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("configure %s: %w", Name, err)
	}
	cfg, diags := parseConfig(req.Config)
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	if err := p.lockOwner(cfg.stateDir); err != nil {
		return &sdk.ConfigureResponse{Diagnostics: append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config.state_dir",
			Summary: "cannot hold the engine's lock file", Detail: err.Error()})}, nil
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	if _, err := p.daemonFor(ctx, cfg.params); err != nil {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Field: "config.host",
			Summary: "the Docker daemon cannot be reached now; jobs on this engine will fail until it can", Detail: err.Error()})
	}
	return &sdk.ConfigureResponse{Diagnostics: diags}, nil
}

func parseConfig(raw map[string]any) (config, []sdk.Diagnostic) {
	cfg := defaultConfig()
	params, diags := parseParams(raw, cfg.params, "config.", func(k string) bool { return ownKeys[k] })
	cfg.params = params
	bad := func(field, summary string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary})
	}
	badf := func(field, summary string, args ...any) { bad(field, fmt.Sprintf(summary, args...)) }
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case "state_dir", "docker_config":
			abs, ok := engineparams.AbsPath(k, v, badf)
			if !ok {
				continue
			}
			if k == "state_dir" {
				cfg.stateDir = abs
			} else {
				cfg.dockerConfig = abs
			}
		case "kill_grace":
			s, _ := v.(string)
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				bad(k, fmt.Sprintf("must be a non-negative duration such as \"2s\" (got %v)", v))
				continue
			}
			cfg.grace = d
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
