package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/hashicorp/go-hclog"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/internal/ownerlock"
)

// workspaceRoot is where workspaces are mounted in containers, each under
// its own ID so that no two jobs share a path.
const workspaceRoot = "/palvella/ws/"

// workspace is one job's volume, network and settings.
type workspace struct {
	id      string
	workdir string
	volume  string
	network string // the job's own network, or ""
	// holder is the job's container: it lives as long as the workspace,
	// with the workspace and volumes mounted, the job's network, limits,
	// user and environment, and the job's commands in its image run in it
	// as execs (one container start per job, not one per command); a
	// command in another image runs in a container of its own that joins
	// its PID namespace. "" when the image cannot run it (no sh): each
	// command then gets a container of its own.
	holder string
	params params
	d      *daemon
	labels map[string]string
	grace  time.Duration
	log    hclog.Logger

	mu       sync.Mutex
	running  map[string]*run // by ExecID
	canceled map[string]bool // ExecIDs cancelled before they ran
	gone     bool
	// pullLog is the image pull's progress, shown at the start of the
	// first command that has output to show.
	pullLog []byte
	// removing counts containers being removed in the background.
	removing sync.WaitGroup
}

// Setup creates the job's volume (and network), after making sure the
// daemon has the image: pulled when absent (with progress), or a clear
// error when it cannot be.
func (p *Plugin) Setup(ctx context.Context, req *engine.SetupRequest) (*engine.Workspace, error) {
	cfg := p.config()
	pr, diags := parseParams(req.Options, cfg.params, "", nil)
	for _, d := range diags {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, d.Field, "%s", d.Summary)
	}
	if pr.image == "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "image", "the docker engine needs an image: give one in the pipeline (engine: {type: docker, image: ...}), the named engine or the plugin configuration")
	}
	if err := p.lockOwner(cfg.stateDir); err != nil {
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	d, err := p.daemonFor(ctx, pr)
	if err != nil {
		return nil, err
	}
	var pullLog strings.Builder
	if err := p.ensureImage(ctx, d, pr, pr.image, func(line string) { pullLog.WriteString(line) }); err != nil {
		return nil, err
	}
	id := randomID(24)
	labels := map[string]string{
		labelEngine: TypeName, labelOwner: p.owner, labelHost: p.host, labelState: ownerlock.DirID(cfg.stateDir), labelWorkspace: id,
		labelNamespace: req.Namespace, labelPipeline: req.Pipeline, labelRun: req.Run, labelJob: req.Job,
	}
	ws := &workspace{
		id: id, workdir: workspaceRoot + id, volume: "palvella-ws-" + id, params: pr, d: d, labels: labels, grace: cfg.grace, log: p.log,
		running: map[string]*run{}, canceled: map[string]bool{}, pullLog: []byte(pullLog.String()),
	}
	if _, err := d.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: ws.volume, Labels: labels}); err != nil {
		return nil, fmt.Errorf("docker engine: create the workspace volume: %w", err)
	}
	if pr.network == "job" {
		ws.network = "palvella-job-" + id
		if _, err := d.c.NetworkCreate(ctx, ws.network, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			p.removeWorkspace(context.WithoutCancel(ctx), ws)
			return nil, fmt.Errorf("docker engine: create the job's network: %w", err)
		}
	}
	if err := p.startHolder(ctx, ws); err != nil {
		p.removeWorkspace(context.WithoutCancel(ctx), ws)
		return nil, err
	}
	p.mu.Lock()
	p.workspaces[id] = ws
	p.mu.Unlock()
	return &engine.Workspace{ID: id, Workdir: ws.workdir}, nil
}

// startHolder starts the job's container: the image's sh sleeping, under
// docker-init (which reaps what the commands leave), with everything a
// command of the job's image needs. An image without sh runs each command
// in a container of its own, without a shared PID namespace.
func (p *Plugin) startHolder(ctx context.Context, ws *workspace) error {
	hc := ws.hostConfig()
	init := true
	hc.Init = &init
	created, err := ws.d.c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: ws.params.image, Entrypoint: []string{"sh"}, Cmd: []string{"-c", "while :; do sleep 3600; done"},
			Labels: withLabel(ws.labels, labelRole, "job"), User: ws.params.user, Env: ws.baseEnv(), WorkingDir: ws.workdir},
		HostConfig: hc, Platform: ws.platform(),
	})
	if err != nil {
		return fmt.Errorf("docker engine: create the job's container: %w", err)
	}
	if _, err := ws.d.c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		p.log.Debug("the image cannot run the job's holder; commands get their own PID namespaces", "image", ws.params.image, "error", err)
		ws.d.c.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
		return ctx.Err()
	}
	ws.holder = created.ID
	return nil
}

// ensureImage makes sure the daemon has image, pulling it as the pull
// parameter says; progress lines go to progress.
func (p *Plugin) ensureImage(ctx context.Context, d *daemon, pr params, image string, progress func(string)) error {
	if pr.pull != "always" {
		_, err := d.c.ImageInspect(ctx, image)
		if err == nil {
			return nil
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("docker engine: inspect image %s: %w", image, err)
		}
		if pr.pull == "never" {
			return sdk.Errorf(sdk.ErrFailedPrecondition, "image", "image %q is not on the Docker daemon at %s, and pull is never", image, d.endpoint)
		}
	}
	auth, err := registryAuth(ctx, pr.login, image)
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{RegistryAuth: auth}
	if pr.platform != "" {
		opts.Platforms = []ocispec.Platform{platformOf(pr.platform)}
	}
	progress(fmt.Sprintf("Pulling image %s\n", image))
	resp, err := d.c.ImagePull(ctx, image, opts)
	if err != nil {
		return pullError(ctx, image, d, pr.login, err)
	}
	last := map[string]string{}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return pullError(ctx, image, d, pr.login, err)
		}
		if msg.Error != nil {
			return pullError(ctx, image, d, pr.login, errors.New(msg.Error.Message))
		}
		// One line per layer and state, not one per chunk downloaded.
		if msg.Status == "" || last[msg.ID] == msg.Status {
			continue
		}
		last[msg.ID] = msg.Status
		if msg.ID != "" {
			progress(fmt.Sprintf("%s: %s\n", msg.ID, msg.Status))
		} else {
			progress(msg.Status + "\n")
		}
	}
	if _, err := d.c.ImageInspect(ctx, image); err != nil {
		return pullError(ctx, image, d, pr.login, err)
	}
	return nil
}

// pullError says that image is absent and could not be pulled, with the
// daemon's reason and never a password.
func pullError(ctx context.Context, image string, d *daemon, l login, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("docker engine: pull %s: %w", image, ctx.Err())
	}
	return sdk.Errorf(sdk.ErrFailedPrecondition, "image", "image %q is not on the Docker daemon at %s and could not be pulled: %s",
		image, d.endpoint, redact(err.Error(), l))
}

func platformOf(s string) ocispec.Platform {
	parts := strings.SplitN(s, "/", 3)
	pl := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		pl.Architecture = parts[1]
	}
	if len(parts) > 2 {
		pl.Variant = parts[2]
	}
	return pl
}

// Teardown stops the workspace's running commands, then removes its
// containers, network and volume.
func (p *Plugin) Teardown(ctx context.Context, workspaceID string) error {
	p.mu.Lock()
	ws := p.workspaces[workspaceID]
	delete(p.workspaces, workspaceID)
	p.mu.Unlock()
	if ws == nil {
		return sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", workspaceID)
	}
	ws.mu.Lock()
	ws.gone = true
	runs := make([]*run, 0, len(ws.running))
	for _, r := range ws.running {
		runs = append(runs, r)
	}
	ws.mu.Unlock()
	for _, r := range runs {
		r.stop(stoppedByTeardown)
	}
	return p.removeWorkspace(ctx, ws)
}

// removeWorkspace removes every container of the workspace, its network
// and its volume.
func (p *Plugin) removeWorkspace(ctx context.Context, ws *workspace) error {
	ws.removing.Wait()
	c := ws.d.c
	var errs []error
	cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", labelWorkspace+"="+ws.id)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list the workspace's containers: %w", err))
	} else {
		for _, ct := range cs.Items {
			if _, err := c.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove container %s: %w", ct.ID, err))
			}
		}
	}
	if ws.network != "" {
		if _, err := c.NetworkRemove(ctx, ws.network, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", ws.network, err))
		}
	}
	if _, err := c.VolumeRemove(ctx, ws.volume, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("remove volume %s: %w", ws.volume, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("docker engine: teardown: %w", err)
	}
	return nil
}

func (p *Plugin) workspace(id string) (*workspace, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.workspaces[id]
	if ws == nil {
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", id)
	}
	return ws, nil
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := maps.Clone(labels)
	out[k] = v
	return out
}
