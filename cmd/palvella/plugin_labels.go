package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/lock"
)

// provenance is where an installed plugin came from and whether the keys
// that signed it still count, from the lock file and the revocations
// remembered from its registry (registries.state.json): no network.
type provenance struct {
	Registry string
	SignedBy []string
	// Revoked are the signers revoked since (id -> reason); AllRevoked is
	// true when no signer is left.
	Revoked    map[string]string
	AllRevoked bool
	Local      bool
	// Yanked is true when the registry yanked the installed version (as
	// of the newest index read from it), and YankedReason says why.
	Yanked       bool
	YankedReason string
}

// provenances returns the provenance of every plugin in the lock file.
// A lock or state that cannot be read yields what could be read.
func (app *App) provenances() map[string]provenance {
	out := map[string]provenance{}
	lf, _, err := lock.LoadLenient(app.lockPath())
	if err != nil {
		return out
	}
	state, err := client.LoadState(app.statePath())
	if err != nil {
		state = &client.State{}
	}
	for _, e := range lf.Plugins {
		p := provenance{Registry: e.Registry, SignedBy: e.SignedBy, Local: e.Source == lock.SourceLocal}
		if !p.Local && e.Registry != "" {
			p.Revoked, p.AllRevoked = index.RevokedSigners(state.RevokedKeys(e.Registry), e.SignedBy)
			p.YankedReason, p.Yanked = state.YankedReason(e.Registry, e.Name, e.Version)
		}
		out[e.Name] = p
	}
	return out
}

// label is the SOURCE column: "registry acme (key 9f2c0a1b3d4e5f60)",
// "local (unsigned)".
func (p provenance) label() string {
	if p.Local {
		return "local (unsigned)"
	}
	if len(p.SignedBy) == 0 {
		return "registry " + p.Registry + " (unsigned)"
	}
	return fmt.Sprintf("registry %s (key %s)", p.Registry, strings.Join(p.SignedBy, ","))
}

// revokedProblem says why a plugin's signers no longer count.
func (p provenance) revokedProblem() string {
	ids := make([]string, 0, len(p.Revoked))
	for id := range p.Revoked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("key %s (%s)", id, p.Revoked[id]))
	}
	return fmt.Sprintf("signed only by keys the root of registry %s revoked: %s; install a version signed by another key (palvella plugin upgrade, or remove and add it)",
		p.Registry, strings.Join(parts, ", "))
}

// yankedProblem says that the installed version was yanked.
func (p provenance) yankedProblem(version string) string {
	why := p.YankedReason
	if why == "" {
		why = "no reason given"
	}
	return fmt.Sprintf("version %s was yanked by registry %s (%s); move to another version with palvella plugin upgrade, or plugin add NAME@VERSION", version, p.Registry, why)
}

// editedLocks checks the lock entry of every installed plugin whose binary
// still has the recorded sha256 (a changed binary is reported as modified
// already): the recorded sha256 against the signed artifact's, and the
// name and version against what the binary says of itself (--describe),
// the binaries asked in parallel. It returns the entries found edited.
func (app *App) editedLocks(ctx context.Context, specs []pluginhost.Spec) map[string]error {
	lf, _, err := lock.LoadLenient(app.lockPath())
	if err != nil {
		return nil
	}
	platform := client.PlatformKey(&client.Client{})
	out := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, s := range specs {
		e := lf.Get(s.Name)
		if s.Source == pluginhost.SourceBuiltin || s.Broken != "" || e == nil {
			continue
		}
		if err := e.CheckArtifact(platform); err != nil {
			out[s.Name] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if sum, err := pluginhost.SHA256File(e.Path); err != nil || sum != e.SHA256 {
				return // missing or modified: said by the caller
			}
			err := client.CheckManifest(ctx, e, 5*time.Second)
			if errors.Is(err, registry.ErrChecksum) {
				mu.Lock()
				out[s.Name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}
