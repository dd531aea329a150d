package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/palvella/palvella/core/api/wire"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/clientset"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	Logger hclog.Logger
	// Host is served to every plugin at Configure; nil offers no services.
	Host sdk.Host
	// StartTimeout bounds one launch, handshake included (default 20s).
	StartTimeout time.Duration
	// CheckInterval is how often a running plugin's process is checked for
	// exit (default 200ms); PingInterval how often it is health-checked
	// over gRPC (default 5s).
	CheckInterval time.Duration
	PingInterval  time.Duration
	// MinBackoff and MaxBackoff bound the delay between restarts of a
	// crashed plugin (defaults 100ms and 30s). The delay doubles with each
	// failed restart and is reset once a plugin has run for a minute.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// BaseEnv is the environment every plugin gets (default PATH, HOME,
	// TMPDIR and LANG from the core's environment).
	BaseEnv []string
	// OnCall, if set, is told of every call to a plugin (unary calls, and
	// the opening of streams) with how long it took; the server feeds its
	// metrics with it.
	OnCall func(plugin, method string, d time.Duration, err error)
	// DefaultPluginEnv is added to a plugin's environment unless its Spec
	// sets the same variable (default GOMAXPROCS=1: see
	// docs/design/plugin-launch.md).
	DefaultPluginEnv map[string]string
	// OnDrained, if set, is told (in a goroutine of its own) each time a
	// version of a plugin that was replaced or removed has stopped for
	// good: its binary is no longer used by this manager unless another
	// spec names it (see Paths).
	OnDrained func(Spec)
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 20 * time.Second
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = 200 * time.Millisecond
	}
	if o.PingInterval == 0 {
		o.PingInterval = 5 * time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.BaseEnv == nil {
		o.BaseEnv = MinimalEnv()
	}
	if o.DefaultPluginEnv == nil {
		o.DefaultPluginEnv = map[string]string{"GOMAXPROCS": "1"}
	}
}

// MinimalEnv is the part of the core's environment every plugin gets.
func MinimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Manager owns every plugin client of the core.
type Manager struct {
	opts Options
	id   *hostIdentity

	mu      sync.Mutex
	plugins map[string]*Plugin
	// retired are versions replaced or removed (live.go) that still have
	// users; each stops when its last user is done.
	retired map[*Plugin]struct{}
	// gen counts the changes to the set of plugins (Generation).
	gen    uint64
	closed bool
}

// New returns a Manager with no plugins.
func New(opts Options) (*Manager, error) {
	opts.setDefaults()
	id, err := newHostIdentity()
	if err != nil {
		return nil, err
	}
	return &Manager{opts: opts, id: id, plugins: map[string]*Plugin{}, retired: map[*Plugin]struct{}{}}, nil
}

// Add registers a plugin. It is launched on first use.
func (m *Manager) Add(spec Spec) (*Plugin, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrShutdown
	}
	if _, ok := m.plugins[spec.Name]; ok {
		return nil, fmt.Errorf("plugin %q is registered twice", spec.Name)
	}
	p := m.newPlugin(spec)
	m.plugins[spec.Name] = p
	m.gen++
	return p, nil
}

func (m *Manager) newPlugin(spec Spec) *Plugin {
	p := &Plugin{m: m, spec: spec, logger: m.opts.Logger.Named(spec.Name), state: StateStopped, stop: make(chan struct{})}
	if spec.Broken != "" {
		// Failed from the start, with its reason, so the API shows why
		// before anything asks for it.
		p.state, p.lastErr = StateFailed, brokenError(&spec)
	}
	return p
}

func brokenError(spec *Spec) error {
	return fmt.Errorf("plugin %q: %s: %w", spec.Name, spec.Broken, ErrBroken)
}

// Remove forgets a plugin: it is no longer found by name, and its process
// stops once the last lease and call on it are done (at once if there is
// none), so that jobs in flight finish on it.
func (m *Manager) Remove(name string) error {
	m.mu.Lock()
	p, ok := m.plugins[name]
	if ok {
		delete(m.plugins, name)
		m.retired[p] = struct{}{}
		m.gen++
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrPluginNotFound, name)
	}
	p.retire()
	return nil
}

// Plugin returns a registered plugin.
func (m *Manager) Plugin(name string) (*Plugin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.plugins[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrPluginNotFound, name)
	}
	return p, nil
}

// List returns the status of every plugin found by name, sorted by name.
// Each lists its running instances: its own process, and the processes of
// versions it replaced that still serve their users (see Report for the
// removed plugins that do).
func (m *Manager) List() []Status {
	return m.statuses(false)
}

// Shutdown stops every plugin: each gets a graceful shutdown request and is
// killed if it does not exit in time. The manager cannot be used after.
func (m *Manager) Shutdown() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	ps := make([]*Plugin, 0, len(m.plugins)+len(m.retired))
	for _, p := range m.plugins {
		ps = append(ps, p)
	}
	for p := range m.retired {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.shutdown()
		}()
	}
	wg.Wait()
}

// State of a plugin.
type State = wire.PluginState

// Plugin states.
const (
	StateStopped    = wire.StateStopped
	StateStarting   = wire.StateStarting
	StateRunning    = wire.StateRunning
	StateRestarting = wire.StateRestarting
	StateFailed     = wire.StateFailed
	// StateDraining is a plugin removed while jobs used it (Report): its
	// process serves them and stops when the last is done.
	StateDraining = wire.StateDraining
)

// Status is what the API and CLI show of a plugin (wire.PluginStatus).
type Status = wire.PluginStatus

// Plugin is one supervised plugin.
type Plugin struct {
	m      *Manager
	spec   Spec
	logger hclog.Logger
	stop   chan struct{}

	mu       sync.Mutex
	state    State
	client   *goplugin.Client
	rpc      goplugin.ClientProtocol
	manifest *sdk.Manifest
	restarts int
	lastErr  error
	// launching is closed when the launch in progress ends, either way.
	launching chan struct{}
	// healthySince is when the current process became ready.
	healthySince time.Time
	backoff      time.Duration
	// retired is set once the plugin was replaced or removed; users counts
	// its leases and calls in flight, leases the leases alone; finished is
	// set once it was stopped after its last user (live.go).
	retired  bool
	users    int
	leases   int
	finished bool
	// schemas are the compiled schemas of the latest launch (schema.go).
	schemas atomic.Pointer[Schemas]
}

// Name of the plugin.
func (p *Plugin) Name() string { return p.spec.Name }

// Spec returns how the plugin is launched.
func (p *Plugin) Spec() Spec { return p.spec }

// Status reports the plugin's state.
func (p *Plugin) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{Name: p.spec.Name, Source: p.spec.Source, Version: p.spec.Version, Categories: p.spec.Categories,
		Path: p.spec.Path, State: p.state, Restarts: p.restarts}
	if p.manifest != nil {
		st.Version, st.Categories = p.manifest.Version, p.manifest.Categories
	}
	if p.lastErr != nil {
		st.LastError = p.lastErr.Error()
	}
	if p.client != nil && p.state == StateRunning {
		st.Protocol = p.client.NegotiatedVersion()
		if rc := p.client.ReattachConfig(); rc != nil {
			st.PID = rc.Pid
		}
	}
	st.Instances = []Instance{}
	if in, ok := p.instanceLocked(); ok {
		st.Instances = append(st.Instances, in)
	}
	return st
}

// Manifest returns the manifest the running plugin reported, launching it
// if needed.
func (p *Plugin) Manifest(ctx context.Context) (*sdk.Manifest, error) {
	if _, err := p.ensure(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.manifest, nil
}

// Client returns a client of one category of the plugin, launching it if
// needed and waiting (within ctx) while it restarts. Calls on a client whose
// process has since stopped fail with sdk.ErrPluginStopped; ask for a new
// client after that. If p was replaced, the client is of the version that
// replaced it. The client does not hold the version: a call in flight
// does, but a replacement between two calls stops it once its other users
// are done. Work that must stay on one version holds a Lease.
func Client[T sdk.Plugin](ctx context.Context, p *Plugin, c sdk.Category) (T, error) {
	var zero T
	var rpc goplugin.ClientProtocol
	for {
		cur, err := p.current()
		if err != nil {
			return zero, err
		}
		p = cur
		rpc, err = p.ensure(ctx)
		if err != nil && p.isRetired() {
			continue // replaced meanwhile: ask its successor
		}
		if err != nil {
			return zero, err
		}
		break
	}
	return dispense[T](p, rpc, c)
}

func dispense[T sdk.Plugin](p *Plugin, rpc goplugin.ClientProtocol, c sdk.Category) (T, error) {
	var zero T
	raw, err := rpc.Dispense(c.String())
	if err != nil {
		return zero, fmt.Errorf("plugin %q: dispense %s: %w", p.spec.Name, c, err)
	}
	out, ok := raw.(T)
	if !ok {
		return zero, fmt.Errorf("plugin %q: %s client has type %T, not the one asked for", p.spec.Name, c, raw)
	}
	return out, nil
}

// Start launches the plugin if it is not running.
func (p *Plugin) Start(ctx context.Context) error {
	_, err := p.ensure(ctx)
	return err
}

// ensure returns the running plugin's protocol client, launching the
// plugin if it is stopped or failed, and waiting for a launch or restart in
// progress.
func (p *Plugin) ensure(ctx context.Context) (goplugin.ClientProtocol, error) {
	for {
		p.mu.Lock()
		select {
		case <-p.stop:
			retired := p.retired
			p.mu.Unlock()
			if retired {
				return nil, fmt.Errorf("plugin %q %s: %w", p.spec.Name, p.spec.Version, ErrRetired)
			}
			return nil, fmt.Errorf("plugin %q: %w", p.spec.Name, ErrShutdown)
		default:
		}
		switch p.state {
		case StateRunning:
			client, rpc := p.client, p.rpc
			p.mu.Unlock()
			if cause := alive(client, rpc); cause != nil {
				// The process died and the supervisor has not noticed yet:
				// hand it over to the restart and wait for it.
				go p.crashed(client, cause)
				select {
				case <-ctx.Done():
					return nil, p.stoppedError(ctx.Err(), cause)
				case <-time.After(p.m.opts.CheckInterval / 4):
				}
				continue
			}
			return rpc, nil
		case StateStopped, StateFailed:
			p.state = StateStarting
			done := make(chan struct{})
			p.launching = done
			p.mu.Unlock()
			err := p.launch(ctx)
			close(done)
			if err != nil {
				return nil, err
			}
			continue
		default: // starting or restarting
			wait := p.launching
			restarting := p.state == StateRestarting
			lastErr := p.lastErr
			p.mu.Unlock()
			if wait == nil {
				// Restarting, waiting out the backoff: no launch to wait for yet.
				select {
				case <-ctx.Done():
					return nil, p.stoppedError(ctx.Err(), lastErr)
				case <-p.stop:
					return nil, fmt.Errorf("plugin %q: %w", p.spec.Name, ErrShutdown)
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			select {
			case <-ctx.Done():
				if restarting {
					return nil, p.stoppedError(ctx.Err(), lastErr)
				}
				return nil, fmt.Errorf("plugin %q: waiting for launch: %w", p.spec.Name, ctx.Err())
			case <-wait:
			}
		}
	}
}

func (p *Plugin) stoppedError(cause, last error) error {
	msg := fmt.Sprintf("plugin %q is restarting after it stopped", p.spec.Name)
	if last != nil {
		msg += " (" + last.Error() + ")"
	}
	return fmt.Errorf("%s: %w", msg, errors.Join(sdk.ErrPluginStopped, cause))
}

// launch starts a process, configures it and starts supervising it. The
// caller has set the state to starting or restarting and owns p.launching.
func (p *Plugin) launch(ctx context.Context) error {
	client, rpc, manifest, err := p.start(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
		if client != nil {
			go client.Kill()
		}
		p.state = StateStopped
		return fmt.Errorf("plugin %q: %w", p.spec.Name, ErrShutdown)
	default:
	}
	if err != nil {
		p.lastErr = err
		if p.state == StateStarting {
			p.state = StateFailed
		}
		return err
	}
	p.client, p.rpc, p.manifest = client, rpc, manifest
	p.state = StateRunning
	p.healthySince = time.Now()
	go p.supervise(client, rpc)
	return nil
}

// start runs one launch: checksum, handshake, describe, configure.
func (p *Plugin) start(ctx context.Context) (*goplugin.Client, goplugin.ClientProtocol, *sdk.Manifest, error) {
	if p.spec.Broken != "" {
		return nil, nil, nil, brokenError(&p.spec)
	}
	sum, err := hex.DecodeString(p.spec.SHA256)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plugin %q: sha256: %w", p.spec.Name, err)
	}
	// The checksum: see binary.go. What is executed is the file that was
	// checked, through its open descriptor.
	exe, err := executables.acquire(p.spec.Path, sum)
	if err != nil {
		return nil, nil, nil, classify(&p.spec, err, "")
	}
	defer executables.release(exe)
	cmd := exec.Command(exe.exe, p.spec.Args...)
	cmd.Args[0] = p.spec.Path
	bindLifetime(cmd)
	cmd.Env = append([]string(nil), p.m.opts.BaseEnv...)
	env := maps.Clone(p.m.opts.DefaultPluginEnv)
	maps.Copy(env, p.spec.Env)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	// The host's certificate goes to the plugin as AutoMTLS would send it.
	cmd.Env = append(cmd.Env, "PLUGIN_CLIENT_CERT="+string(p.m.id.certPEM))

	stderr := newTail(8 << 10)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: clientset.VersionedPlugins(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		TLSConfig:        p.m.id.tlsConfig(),
		StartTimeout:     p.m.opts.StartTimeout,
		Logger:           p.logger,
		Stderr:           stderr,
		GRPCDialOptions:  p.callObserver(),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, nil, nil, classify(&p.spec, err, stderr.String())
	}
	base, err := rpc.Dispense(sdk.BasePluginName)
	if err != nil {
		client.Kill()
		return nil, nil, nil, &LaunchError{Plugin: p.spec.Name, Path: p.spec.Path, Problem: ProblemTransport, Err: err}
	}
	bc, ok := base.(sdk.Plugin)
	if !ok {
		client.Kill()
		return nil, nil, nil, fmt.Errorf("plugin %q: base client has type %T", p.spec.Name, base)
	}
	cctx, cancel := context.WithTimeout(ctx, p.m.opts.StartTimeout)
	defer cancel()
	manifest, err := bc.Describe(cctx)
	if err != nil {
		client.Kill()
		return nil, nil, nil, &LaunchError{Plugin: p.spec.Name, Path: p.spec.Path, Problem: ProblemConfigure, Err: fmt.Errorf("describe: %w", err), Output: stderr.String()}
	}
	// The configuration is checked against the plugin's schema before the
	// plugin sees it (schema.go).
	if err := p.checkConfig(manifest); err != nil {
		client.Kill()
		return nil, nil, nil, err
	}
	resp, err := bc.Configure(cctx, &sdk.ConfigureRequest{Config: p.spec.Config, Host: p.m.opts.Host})
	if err == nil && sdk.HasErrors(resp.Diagnostics) {
		err = diagnosticsError(resp.Diagnostics)
	}
	if err != nil {
		client.Kill()
		return nil, nil, nil, &LaunchError{Plugin: p.spec.Name, Path: p.spec.Path, Problem: ProblemConfigure, Err: err}
	}
	for _, d := range resp.Diagnostics {
		p.logger.Warn("configuration warning", "field", d.Field, "summary", d.Summary, "detail", d.Detail)
	}
	p.logger.Debug("plugin started", "version", manifest.Version, "protocol", client.NegotiatedVersion())
	return client, rpc, manifest, nil
}

func diagnosticsError(ds []sdk.Diagnostic) error {
	var errs []error
	for _, d := range ds {
		if d.Severity != sdk.SeverityError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		errs = append(errs, sdk.Errorf(sdk.ErrInvalidArgument, d.Field, "%s", msg))
	}
	return errors.Join(errs...)
}

// supervise watches one process until it exits or stops answering, then
// restarts the plugin with backoff.
func (p *Plugin) supervise(client *goplugin.Client, rpc goplugin.ClientProtocol) {
	check := time.NewTicker(p.m.opts.CheckInterval)
	defer check.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case <-check.C:
		}
		var cause error
		if client.Exited() {
			cause = errors.New("plugin process exited")
		} else if time.Since(lastPing) >= p.m.opts.PingInterval {
			lastPing = time.Now()
			if err := pingWithin(rpc, p.m.opts.PingInterval); err != nil {
				cause = fmt.Errorf("health check failed: %w", err)
			}
		}
		if cause == nil {
			continue
		}
		p.crashed(client, cause)
		return
	}
}

// alive reports why a running plugin's connection is unusable, or nil. A
// ready connection is trusted; an idle or failed one (as after the plugin
// went away) is pinged.
func alive(client *goplugin.Client, rpc goplugin.ClientProtocol) error {
	if client.Exited() {
		return errors.New("plugin process exited")
	}
	if gc, ok := rpc.(*goplugin.GRPCClient); ok {
		switch gc.Conn.GetState() {
		case connectivity.Ready, connectivity.Connecting:
			return nil
		}
	}
	if err := pingWithin(rpc, time.Second); err != nil {
		return fmt.Errorf("plugin stopped answering: %w", err)
	}
	return nil
}

func pingWithin(rpc goplugin.ClientProtocol, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- rpc.Ping() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return errors.New("no answer")
	}
}

// crashed marks the plugin down and restarts it with backoff until it runs
// again or the manager shuts down.
func (p *Plugin) crashed(client *goplugin.Client, cause error) {
	client.Kill()
	p.mu.Lock()
	if p.client != client {
		p.mu.Unlock()
		return
	}
	p.state = StateRestarting
	p.lastErr = cause
	p.client, p.rpc = nil, nil
	if time.Since(p.healthySince) > time.Minute || p.backoff == 0 {
		p.backoff = p.m.opts.MinBackoff
	}
	p.mu.Unlock()
	p.logger.Error("plugin stopped; restarting", "error", cause)

	for {
		p.mu.Lock()
		delay := p.backoff
		p.backoff = min(p.backoff*2, p.m.opts.MaxBackoff)
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-time.After(delay):
		}
		p.mu.Lock()
		p.restarts++
		done := make(chan struct{})
		p.launching = done
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), p.m.opts.StartTimeout)
		err := p.launch(ctx)
		cancel()
		p.mu.Lock()
		p.launching = nil
		p.mu.Unlock()
		close(done)
		if err == nil {
			p.logger.Info("plugin restarted")
			return
		}
		if errors.Is(err, ErrShutdown) {
			return
		}
		p.logger.Error("plugin restart failed", "error", err, "retry_in", p.backoff)
	}
}

// shutdown stops the plugin for good.
func (p *Plugin) shutdown() {
	p.mu.Lock()
	select {
	case <-p.stop:
		p.mu.Unlock()
		return
	default:
	}
	close(p.stop)
	client := p.client
	p.client, p.rpc = nil, nil
	p.state = StateStopped
	p.mu.Unlock()
	if client != nil {
		client.Kill()
	}
}

// SHA256File returns the hex sha256 of a file.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// callObserver returns the dial options that count each call as a user of
// the plugin while it is in flight (a stream until it ends), so that a
// replaced version is not stopped under it, and report it to
// Options.OnCall.
func (p *Plugin) callObserver() []grpc.DialOption {
	on := p.m.opts.OnCall
	name := p.spec.Name
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if servesWork(method) {
				p.use()
				defer p.unuse()
			}
			start := time.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			if on != nil {
				on(name, method, time.Since(start), err)
			}
			return err
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			counted := servesWork(method)
			if counted {
				p.use()
			}
			start := time.Now()
			cs, err := streamer(ctx, desc, cc, method, opts...)
			if on != nil {
				on(name, method, time.Since(start), err)
			}
			if !counted {
				return cs, err
			}
			if err != nil {
				p.unuse()
				return nil, err
			}
			return newCountedStream(ctx, desc, cs, p.unuse), nil
		}),
	}
}
