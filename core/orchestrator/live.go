package orchestrator

import (
	"context"
	"slices"
	"sync"

	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// A job runs on the plugin versions current when it started.
//
// Plugins are added, upgraded and removed under a running server
// (pluginhost.Manager.Sync). So that a job in flight is not cut in two
// versions, or left without a plugin it was using, execute holds a lease on
// every action, job and engine plugin for the job's life, and resolves
// types with the index of those versions: its calls go to the versions it
// started with, which the plugin host keeps running until the last job
// holding them is done. Leases cost a counter each; a version a job never
// calls is never launched for it. New jobs lease the versions current
// when they start. See docs/design/live-plugins.md.

// heldPlugins are the plugin versions one job holds.
type heldPlugins struct {
	mu     sync.Mutex
	leases map[string]*pluginhost.Lease
	idx    *typeIndex
}

type heldKey struct{}

// holdPlugins leases every action, job and engine plugin for the job
// whose context is ctx; release ends the leases.
func (o *Orchestrator) holdPlugins(ctx context.Context) (context.Context, func()) {
	h := &heldPlugins{leases: map[string]*pluginhost.Lease{}}
	for _, st := range o.opts.Plugins.List() {
		if !slices.ContainsFunc(st.Categories, pinned) {
			continue
		}
		l, err := o.opts.Plugins.Lease(st.Name)
		if err != nil {
			continue // removed meanwhile: the job does not find it
		}
		h.leases[st.Name] = l
	}
	return context.WithValue(ctx, heldKey{}, h), func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, l := range h.leases {
			l.Release()
		}
		h.leases = nil
	}
}

// pinned reports whether a job holds the plugins of a category for its
// life: those it runs its work with. The database, storage, credential and
// authentication plugins are shared by the whole server and not held.
func pinned(c sdk.Category) bool {
	return c == sdk.CategoryAction || c == sdk.CategoryJob || c == sdk.CategoryEngine
}

func heldFrom(ctx context.Context) *heldPlugins {
	h, _ := ctx.Value(heldKey{}).(*heldPlugins)
	return h
}

// leaseOf returns the lease ctx's job holds on a plugin, if any.
func leaseOf(ctx context.Context, name string, c sdk.Category) *pluginhost.Lease {
	h := heldFrom(ctx)
	if h == nil || !pinned(c) {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leases[name]
}

// heldIndex returns the type index a job resolves types with: the one
// current at its first lookup, kept for the rest of the job.
func (o *Orchestrator) heldIndex(ctx context.Context, build func() (*typeIndex, error)) (*typeIndex, error) {
	h := heldFrom(ctx)
	if h == nil {
		return build()
	}
	h.mu.Lock()
	idx := h.idx
	h.mu.Unlock()
	if idx != nil {
		return idx, nil
	}
	idx, err := build()
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.idx == nil {
		h.idx = idx
	}
	idx = h.idx
	h.mu.Unlock()
	return idx, nil
}

// pluginAt returns the version of a plugin ctx's job holds, or the
// current one.
func (o *Orchestrator) pluginAt(ctx context.Context, name string, c sdk.Category) (*pluginhost.Plugin, error) {
	if l := leaseOf(ctx, name, c); l != nil {
		return l.Plugin(), nil
	}
	return o.plugin(name)
}
