package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"github.com/palvella/palvella/core/api/wire"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"google.golang.org/grpc"
)

// Live changes: a Plugin is one version of a plugin (one Spec). Sync and
// Remove retire a version instead of stopping it: new work finds the
// version that replaced it (or nothing), while the retired version's
// process keeps serving its users (leases and calls in flight) and is
// stopped when the last of them is done. See docs/design/live-plugins.md.

// ErrRetired means a version of a plugin was replaced or removed; work
// that did not hold it goes to the version that replaced it.
var ErrRetired = errors.New("pluginhost: plugin version replaced or removed")

// InstanceState says whether a plugin's process takes new work.
type InstanceState = wire.InstanceState

// Instance states.
const (
	// InstanceServing takes new work.
	InstanceServing = wire.InstanceServing
	// InstanceDraining belongs to a replaced or removed version: it serves
	// the work it had and stops when that is done.
	InstanceDraining = wire.InstanceDraining
)

// Instance is one running process of a plugin.
type Instance = wire.PluginInstance

// instanceLocked describes p's running process, if any. p.mu is held.
func (p *Plugin) instanceLocked() (Instance, bool) {
	if p.client == nil || p.state != StateRunning {
		return Instance{}, false
	}
	in := Instance{Version: p.spec.Version, State: InstanceServing, Leases: p.leases, Calls: p.users - p.leases, Path: p.spec.Path}
	if p.manifest != nil {
		in.Version = p.manifest.Version
	}
	if p.retired {
		in.State = InstanceDraining
	}
	if rc := p.client.ReattachConfig(); rc != nil {
		in.PID = rc.Pid
	}
	return in, true
}

// statuses lists the plugins found by name, each with the instances of its
// retired versions, and with removed set, the removed plugins that still
// have a running instance.
func (m *Manager) statuses(removed bool) []Status {
	m.mu.Lock()
	ps := make([]*Plugin, 0, len(m.plugins))
	for _, p := range m.plugins {
		ps = append(ps, p)
	}
	old := make([]*Plugin, 0, len(m.retired))
	for p := range m.retired {
		old = append(old, p)
	}
	m.mu.Unlock()
	byName := map[string]int{}
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		byName[p.spec.Name] = len(out)
		out = append(out, p.Status())
	}
	for _, p := range old {
		st := p.Status()
		if len(st.Instances) == 0 {
			continue
		}
		if i, ok := byName[st.Name]; ok {
			out[i].Instances = append(out[i].Instances, st.Instances...)
			continue
		}
		if !removed {
			continue
		}
		st.State, st.PID, st.Protocol = StateDraining, 0, 0
		byName[st.Name] = len(out)
		out = append(out, st)
	}
	for i := range out {
		// The serving instance first, then the draining ones, oldest
		// first (lowest pid is a fair proxy within one host).
		slices.SortStableFunc(out[i].Instances, func(a, b Instance) int {
			if a.State != b.State {
				if a.State == InstanceServing {
					return -1
				}
				return 1
			}
			return a.PID - b.PID
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Report is List plus the removed plugins whose process still serves the
// work it had, in state "draining": what the API and CLI show.
func (m *Manager) Report() []Status {
	return m.statuses(true)
}

// Generation changes each time the set of plugins changes (Add, Remove,
// Sync), so that what was derived from their manifests can be rebuilt.
func (m *Manager) Generation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// Paths returns the binaries the manager may still run: those of every
// plugin found by name and of every retired version not yet stopped.
func (m *Manager) Paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, p := range m.plugins {
		out = append(out, p.spec.Path)
	}
	for p := range m.retired {
		out = append(out, p.spec.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SyncResult says what Sync changed, by plugin name.
type SyncResult = wire.SyncResult

// Sync makes specs the manager's plugins: a plugin not there yet is added,
// one whose spec differs is replaced by a new version, and one no longer
// in specs is removed. A replaced or removed version keeps serving its
// leases and calls in flight and stops after the last (see Remove). New
// versions launch on first use, like added plugins. If any spec is invalid
// nothing changes.
func (m *Manager) Sync(specs []Spec) (*SyncResult, error) {
	seen := map[string]bool{}
	for i := range specs {
		if err := specs[i].validate(); err != nil {
			return nil, err
		}
		if seen[specs[i].Name] {
			return nil, fmt.Errorf("plugin %q is listed twice", specs[i].Name)
		}
		seen[specs[i].Name] = true
	}
	res := &SyncResult{Added: []string{}, Replaced: []string{}, Removed: []string{}}
	var retire []*Plugin
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrShutdown
	}
	for _, spec := range specs {
		old, ok := m.plugins[spec.Name]
		switch {
		case !ok:
			res.Added = append(res.Added, spec.Name)
		case sameSpec(old.spec, spec):
			continue
		default:
			res.Replaced = append(res.Replaced, spec.Name)
			retire = append(retire, old)
			m.retired[old] = struct{}{}
		}
		m.plugins[spec.Name] = m.newPlugin(spec)
	}
	for name, p := range m.plugins {
		if !seen[name] {
			delete(m.plugins, name)
			res.Removed = append(res.Removed, name)
			retire = append(retire, p)
			m.retired[p] = struct{}{}
		}
	}
	if res.Changed() {
		m.gen++
	}
	m.mu.Unlock()
	for _, p := range retire {
		p.retire()
	}
	slices.Sort(res.Added)
	slices.Sort(res.Replaced)
	slices.Sort(res.Removed)
	return res, nil
}

// sameSpec reports whether two specs launch the same thing the same way.
func sameSpec(a, b Spec) bool {
	return reflect.DeepEqual(a, b)
}

// current returns p, or the version that replaced it if p was retired.
func (p *Plugin) current() (*Plugin, error) {
	p.mu.Lock()
	retired := p.retired
	p.mu.Unlock()
	if !retired {
		return p, nil
	}
	next, err := p.m.Plugin(p.spec.Name)
	if err != nil {
		return nil, fmt.Errorf("plugin %q was removed: %w", p.spec.Name, err)
	}
	return next, nil
}

func (p *Plugin) isRetired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retired
}

// use counts a user of p; unuse ends one, and stops a retired p after its
// last user.
func (p *Plugin) use() {
	p.mu.Lock()
	p.users++
	p.mu.Unlock()
}

func (p *Plugin) unuse() {
	p.mu.Lock()
	p.users--
	done := p.retired && p.users == 0 && !p.finished
	if done {
		p.finished = true
	}
	p.mu.Unlock()
	if done {
		go p.m.drained(p)
	}
}

// retire marks p replaced or removed, and stops it at once if nothing
// uses it.
func (p *Plugin) retire() {
	p.mu.Lock()
	p.retired = true
	done := p.users == 0 && !p.finished
	if done {
		p.finished = true
	}
	running := p.client != nil
	p.mu.Unlock()
	if running && !done {
		p.logger.Info("plugin version replaced; it stops once the work it serves is done", "version", p.Status().Version)
	}
	if done {
		p.m.drained(p)
	}
}

// drained stops a retired version whose last user is done and forgets it.
func (m *Manager) drained(p *Plugin) {
	p.shutdown()
	m.mu.Lock()
	delete(m.retired, p)
	closed := m.closed
	m.mu.Unlock()
	p.logger.Debug("retired plugin version stopped", "version", p.spec.Version)
	if m.opts.OnDrained != nil && !closed {
		go m.opts.OnDrained(p.spec)
	}
}

// Lease holds one version of a plugin: however the plugin is replaced or
// removed meanwhile, clients from the lease talk to that version, and its
// process (launched on first use) is not stopped before Release. A job
// leases the plugins it uses for its whole life, so that it finishes on the
// versions it started with.
type Lease struct {
	p    *Plugin
	once sync.Once
}

// Lease holds the version of the plugin currently found by name.
func (m *Manager) Lease(name string) (*Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.plugins[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrPluginNotFound, name)
	}
	// Under m.mu, so that Sync cannot retire p between the lookup and the
	// count: a version is retired after it left m.plugins.
	p.mu.Lock()
	p.users++
	p.leases++
	p.mu.Unlock()
	return &Lease{p: p}, nil
}

// Plugin returns the leased version.
func (l *Lease) Plugin() *Plugin { return l.p }

// Release ends the lease; a retired version stops after its last lease.
// Further calls do nothing.
func (l *Lease) Release() {
	l.once.Do(func() {
		l.p.mu.Lock()
		l.p.leases--
		l.p.mu.Unlock()
		l.p.unuse()
	})
}

// LeaseClient returns a client of one category of the leased version,
// launching it if needed, as Client does.
func LeaseClient[T sdk.Plugin](ctx context.Context, l *Lease, c sdk.Category) (T, error) {
	rpc, err := l.p.ensure(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return dispense[T](l.p, rpc, c)
}

// servesWork reports whether a gRPC method is one of Palvella's services,
// whose calls hold a plugin's process; go-plugin's own (the broker and
// stdio streams open for the process's life, health checks) do not.
func servesWork(method string) bool {
	return strings.HasPrefix(method, "/palvella.")
}

// countedStream calls done once when its stream ends: RecvMsg returned an
// error (io.EOF included), or the one reply of a stream the server does not
// stream, or the call's context ended.
type countedStream struct {
	grpc.ClientStream
	once          sync.Once
	done          func()
	stop          func() bool
	serverStreams bool
}

func newCountedStream(ctx context.Context, desc *grpc.StreamDesc, cs grpc.ClientStream, done func()) *countedStream {
	s := &countedStream{ClientStream: cs, done: done, serverStreams: desc.ServerStreams}
	s.stop = context.AfterFunc(ctx, s.end)
	return s
}

func (s *countedStream) end() { s.once.Do(s.done) }

func (s *countedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil || !s.serverStreams {
		s.stop()
		s.end()
	}
	return err
}
