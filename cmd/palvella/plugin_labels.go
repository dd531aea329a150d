package main

import (
	"fmt"
	"sort"
	"strings"

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
}

// provenances returns the provenance of every plugin in the lock file.
// A lock or state that cannot be read yields what could be read.
func (app *App) provenances() map[string]provenance {
	out := map[string]provenance{}
	lf, err := lock.Load(app.lockPath())
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
