package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// started says the holder runs. Setup only creates it: the job's
	// first command in its image starts it, as the holder's first
	// process (boot.go), which spares that command an exec; anything
	// else that needs it running starts it (ensureStarted). startMu
	// guards holder and started while a start is under way.
	startMu sync.Mutex
	started bool
	// booted says a first command started the holder: a holder started
	// again (it was killed) runs its commands as execs, whatever its
	// stdin then is.
	booted bool
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
	// containers are the workspace's containers not removed yet; unsure
	// says a create failed in a way that may have made one all the same.
	containers map[string]bool
	unsure     bool
}

// Setup starts the job's container, with its workspace volume and (with
// network: job) its network. The image is not inspected first: the
// container is created, and only when the daemon says the image is absent
// is it pulled (with progress), or a clear error returned when it cannot
// be, as `docker run` does. Nor is the volume created on its own: the
// container's mount creates it with the engine's labels.
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
	progress := func(line string) { pullLog.WriteString(line) }
	if pr.pull == "always" {
		if err := p.ensureImage(ctx, d, pr, pr.image, progress); err != nil {
			return nil, err
		}
	}
	id := randomID(24)
	labels := map[string]string{
		labelEngine: TypeName, labelOwner: p.owner, labelHost: p.host, labelState: ownerlock.DirID(cfg.stateDir), labelWorkspace: id,
		labelNamespace: req.Namespace, labelPipeline: req.Pipeline, labelRun: req.Run, labelJob: req.Job,
	}
	ws := &workspace{
		id: id, workdir: workspaceRoot + id, volume: "palvella-ws-" + id, params: pr, d: d, labels: labels, grace: cfg.grace, log: p.log,
		running: map[string]*run{}, canceled: map[string]bool{}, containers: map[string]bool{},
	}
	if pr.network == "job" {
		ws.network = "palvella-job-" + id
		if _, err := d.c.NetworkCreate(ctx, ws.network, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			p.removeWorkspace(context.WithoutCancel(ctx), ws)
			return nil, fmt.Errorf("docker engine: create the job's network: %w", err)
		}
	}
	if err := p.startHolder(ctx, ws, progress); err != nil {
		p.removeWorkspace(context.WithoutCancel(ctx), ws)
		return nil, err
	}
	ws.pullLog = []byte(pullLog.String())
	p.mu.Lock()
	p.workspaces[id] = ws
	p.mu.Unlock()
	return &engine.Workspace{ID: id, Workdir: ws.workdir}, nil
}

// startHolder creates the job's container, to be started by its first
// command (boot.go): the image's sh, under docker-init (which reaps what
// the commands leave), with everything a command of the job's image
// needs. An image the daemon does not have is pulled as the pull
// parameter says, progress to progress, and the container created again.
func (p *Plugin) startHolder(ctx context.Context, ws *workspace, progress func(string)) error {
	hc := ws.hostConfig()
	init := true
	hc.Init = &init
	opts := client.ContainerCreateOptions{
		Config: &container.Config{Image: ws.params.image, Entrypoint: []string{"sh"}, Cmd: []string{"-c", bootScript},
			Labels: withLabel(ws.labels, labelRole, "job"), User: ws.params.user, Env: ws.baseEnv(), WorkingDir: ws.workdir,
			// The first command's script comes on stdin (boot.go).
			OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true},
		HostConfig: hc, Platform: ws.platform(),
	}
	created, err := ws.create(ctx, opts)
	if cerrdefs.IsNotFound(err) && ws.params.pull != "always" {
		// Most likely the image is absent (ensureImage inspects it to be
		// sure, and says so when it cannot be had); the network named by
		// the network parameter may be too, which the second create says.
		if err := p.ensureImage(ctx, ws.d, ws.params, ws.params.image, progress); err != nil {
			return err
		}
		created, err = ws.create(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("docker engine: create the job's container: %w", err)
	}
	ws.holder = created.ID
	return nil
}

// ensureStarted starts the job's container if no command started it yet,
// and returns it: "" when the image cannot run it (no sh), which then
// runs each command in a container of its own, without a shared PID
// namespace. A holder that stopped (it was killed) is started again.
func (ws *workspace) ensureStarted(ctx context.Context) (string, error) {
	ws.startMu.Lock()
	defer ws.startMu.Unlock()
	if ws.holder == "" || ws.started {
		return ws.holder, nil
	}
	return ws.holder, ws.startLocked(ctx)
}

// startLocked starts the holder, with startMu held; when the image cannot
// run it, the holder is removed and forgotten, and the error is nil
// unless ctx ended.
func (ws *workspace) startLocked(ctx context.Context) error {
	if _, err := ws.d.c.ContainerStart(ctx, ws.holder, client.ContainerStartOptions{}); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("docker engine: start the job's container: %w", ctx.Err())
		}
		ws.log.Debug("the image cannot run the job's holder; commands get their own PID namespaces", "image", ws.params.image, "error", err)
		ws.remove(context.WithoutCancel(ctx), ws.holder)
		ws.holder = ""
		return nil
	}
	ws.started = true
	return nil
}

// holderStopped records that the holder is no longer running (its first
// process ended): the next command that needs it starts it again.
func (ws *workspace) holderStopped() {
	ws.startMu.Lock()
	ws.started = false
	ws.startMu.Unlock()
}

// create creates a container of the workspace, and remembers it for
// removeWorkspace. A create that failed may still have made the container
// (a call given up on, a connection lost on the way back): removeWorkspace
// then looks for them by label.
func (ws *workspace) create(ctx context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	created, err := ws.d.c.ContainerCreate(ctx, opts)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err != nil {
		ws.unsure = ws.unsure || !cerrdefs.IsNotFound(err)
		return created, err
	}
	ws.containers[created.ID] = true
	return created, nil
}

// remove removes one container of the workspace and forgets it: one
// removeWorkspace need not remove again.
func (ws *workspace) remove(ctx context.Context, id string) error {
	_, err := ws.d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	ws.mu.Lock()
	delete(ws.containers, id)
	ws.mu.Unlock()
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

// Teardown stops the workspace's running commands, then has its
// containers, network and volume removed in the background: the job is
// over once its commands are, and the next job need not wait for the
// daemon to kill the job's container (docker-init and the idle sh are all
// it still runs, with what a command started with its environment
// cleared) and to delete its files. Drain waits for these removals; what
// a killed process did not finish removing carries the engine's labels
// and goes at the next start's sweep.
func (p *Plugin) Teardown(ctx context.Context, workspaceID string) error {
	p.mu.Lock()
	ws := p.workspaces[workspaceID]
	delete(p.workspaces, workspaceID)
	if ws != nil {
		p.removals.Add(1)
	}
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
	go func() {
		defer p.removals.Done()
		rctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		defer cancel()
		if err := p.removeWorkspace(rctx, ws); err != nil {
			p.log.Warn("remove a workspace", "workspace", ws.id, "error", err)
		}
	}()
	return nil
}

// removeTimeout bounds the removal of one workspace in the background.
const removeTimeout = 2 * time.Minute

// Drain waits until the workspaces torn down so far are removed from their
// daemons, or ctx ends.
func (p *Plugin) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.removals.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// removeWorkspace removes every container of the workspace, then its
// network and its volume (which the containers hold until they go). It
// lists the containers by label only when a create may have made one it
// does not know of.
func (p *Plugin) removeWorkspace(ctx context.Context, ws *workspace) error {
	ws.removing.Wait()
	c := ws.d.c
	var errs []error
	ws.mu.Lock()
	ids := slices.Collect(maps.Keys(ws.containers))
	unsure := ws.unsure
	ws.mu.Unlock()
	if unsure {
		cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", labelWorkspace+"="+ws.id)})
		if err != nil {
			errs = append(errs, fmt.Errorf("list the workspace's containers: %w", err))
		}
		for _, ct := range cs.Items {
			if !slices.Contains(ids, ct.ID) {
				ids = append(ids, ct.ID)
			}
		}
	}
	for _, id := range ids {
		if err := ws.remove(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", id, err))
		}
	}
	// The network and the volume are independent of each other.
	var wg sync.WaitGroup
	var netErr error
	if ws.network != "" {
		wg.Go(func() {
			if _, err := c.NetworkRemove(ctx, ws.network, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				netErr = fmt.Errorf("remove network %s: %w", ws.network, err)
			}
		})
	}
	for attempt := 1; ; attempt++ {
		_, err := c.VolumeRemove(ctx, ws.volume, client.VolumeRemoveOptions{Force: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			break
		}
		if !cerrdefs.IsConflict(err) || attempt == 5 || ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", ws.volume, err))
			break
		}
		// In use by a container the daemon created after the list above:
		// a create the engine gave up on (a command's timeout) goes on at
		// the daemon. Remove what the workspace's label finds, again.
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		cs, lerr := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", labelWorkspace+"="+ws.id)})
		if lerr != nil {
			errs = append(errs, fmt.Errorf("list the workspace's containers: %w", lerr))
			break
		}
		for _, ct := range cs.Items {
			if err := ws.remove(ctx, ct.ID); err != nil {
				errs = append(errs, fmt.Errorf("remove container %s: %w", ct.ID, err))
			}
		}
	}
	wg.Wait()
	errs = append(errs, netErr)
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
