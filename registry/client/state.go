package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/fsutil"
	"github.com/palvella/palvella/registry/sign"
)

// State remembers the newest index seen from each registry, so a replayed
// older index (rollback) is refused.
//
// It is keyed by the registry's name and its pinned root keys (StateKey),
// not by the configuration entry: removing a registry and adding it again
// under the same name and key does not forget what was seen. Only Reset
// forgets, and it leaves a record in Resets.
type State struct {
	Registries map[string]Seen `json:"registries"`
	// Resets records every explicit reset of the rollback memory.
	Resets []Reset `json:"resets,omitempty"`
}

// Reset is one explicit reset of the rollback memory of a registry.
type Reset struct {
	Registry string `json:"registry"`
	Key      string `json:"key"`
	// Version is the newest version that was remembered and is now forgotten.
	Version int64  `json:"version"`
	At      string `json:"at"`
}

// StateKey is the key of registry r in the state: its name and the key ids
// of its pinned root keys, sorted ("acme@1a2b...+3c4d..."), or
// "NAME@unsigned" with no pinned key.
func StateKey(r Registry) string {
	ids := make([]string, 0, len(r.RootKeys))
	for _, k := range r.RootKeys {
		ids = append(ids, sign.KeyID(k))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return r.Name + "@unsigned"
	}
	return r.Name + "@" + strings.Join(ids, "+")
}

// Lookup returns what was seen for key, falling back to an entry written by
// an older palvella under the bare registry name.
func (s *State) Lookup(key string) (Seen, bool) {
	if seen, ok := s.Registries[key]; ok {
		return seen, true
	}
	name, _, _ := strings.Cut(key, "@")
	seen, ok := s.Registries[name]
	return seen, ok
}

// Reset forgets everything seen from registry name (under any root keys)
// and records the reset; it returns the records added.
func (s *State) Reset(name string, now time.Time) []Reset {
	var out []Reset
	for k, seen := range s.Registries {
		if n, _, _ := strings.Cut(k, "@"); n == name {
			out = append(out, Reset{Registry: name, Key: k, Version: seen.Version, At: now.UTC().Format(time.RFC3339)})
			delete(s.Registries, k)
		}
	}
	slices.SortFunc(out, func(a, b Reset) int { return strings.Compare(a.Key, b.Key) })
	s.Resets = append(s.Resets, out...)
	return out
}

// Seen is the newest index seen from one registry.
type Seen struct {
	Version int64 `json:"version"`
	// Digest is the sha256 of the signed index payload at Version; the same
	// version with other content is refused too.
	Digest  string `json:"digest"`
	Expires string `json:"expires"`
	// RootVersion and RootKeys are the newest root followed through the
	// index's root chain (0 and empty: the pinned keys). The next index
	// is verified from this root, and one whose chain ends before it is a
	// rollback.
	RootVersion   int64    `json:"rootVersion,omitempty"`
	RootKeys      []string `json:"rootKeys,omitempty"`
	RootThreshold int      `json:"rootThreshold,omitempty"`
	// Revoked are the key ids the registry's root revoked (id -> reason).
	// They are never forgotten: an index that stops listing a revocation
	// does not make the key good again.
	Revoked map[string]string `json:"revoked,omitempty"`
	// Yanked are the versions the index at Version yanks ("name@version"
	// -> reason), so plugin list and verify can say an installed version
	// was yanked without reading the registry. Unlike revocations they
	// follow the index: a version un-yanked is no longer listed.
	Yanked map[string]string `json:"yanked,omitempty"`
	// Envelope is 2 once a signed envelope (index format 2, verified over
	// its raw bytes before parsing) was accepted from the registry: from
	// then on an index in format 1 is refused as a rollback, so the
	// parse-first path cannot be forced back. Reset forgets it.
	Envelope int `json:"envelope,omitempty"`
}

// LoadState reads a state file; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	s := &State{Registries: map[string]Seen{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry state: %w", err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidIndex, Field: path, Detail: "registry state file is corrupt", Err: err,
			Hint: "it only protects against rollback; if you delete it, the next index read is trusted as the newest"}
	}
	if s.Registries == nil {
		s.Registries = map[string]Seen{}
	}
	return s, nil
}

// Save writes the state atomically.
func (s *State) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode registry state: %w", err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// Check refuses an index older than the newest seen for reg, or one with
// the same version but other content.
func (s *State) Check(reg, key string, version int64, payload []byte) error {
	seen, ok := s.Lookup(key)
	if !ok {
		return nil
	}
	if version < seen.Version {
		return &registry.Error{Kind: registry.ErrRollback, Registry: reg,
			Detail: fmt.Sprintf("index version %d is older than version %d already seen", version, seen.Version),
			Hint:   "a mirror or attacker is replaying an old index; try again later or report it to the registry operator"}
	}
	if version == seen.Version && digest(payload) != seen.Digest {
		return &registry.Error{Kind: registry.ErrRollback, Registry: reg,
			Detail: fmt.Sprintf("index version %d changed without a version bump", version),
			Hint:   "the registry must raise the version at every change; report it to the registry operator"}
	}
	return nil
}

// Record remembers an accepted index.
func (s *State) Record(key string, version int64, payload []byte, expires string) {
	s.RecordTrust(key, version, payload, expires, nil)
}

// RecordTrust remembers an accepted index and what verifying it taught:
// the root followed and the revoked keys (added to those remembered).
func (s *State) RecordTrust(key string, version int64, payload []byte, expires string, t *index.Trust) {
	old, had := s.Lookup(key)
	if had && old.Version > version {
		return
	}
	next := Seen{Version: version, Digest: digest(payload), Expires: expires,
		RootVersion: old.RootVersion, RootKeys: old.RootKeys, RootThreshold: old.RootThreshold, Envelope: old.Envelope}
	if len(old.Revoked) > 0 {
		next.Revoked = maps.Clone(old.Revoked)
	}
	if t != nil {
		if t.RootVersion > next.RootVersion {
			next.RootVersion, next.RootThreshold = t.RootVersion, t.Root.Threshold
			next.RootKeys = next.RootKeys[:0:0]
			for _, k := range t.Root.Keys {
				next.RootKeys = append(next.RootKeys, sign.EncodePublicKey(k))
			}
		}
		for id, why := range t.Revoked {
			if next.Revoked == nil {
				next.Revoked = map[string]string{}
			}
			if _, ok := next.Revoked[id]; !ok {
				next.Revoked[id] = why
			}
		}
	}
	s.Registries[key] = next
	if name, _, _ := strings.Cut(key, "@"); name != key {
		delete(s.Registries, name) // an older palvella's entry, now superseded
	}
}

// RecordEnvelope remembers that key's registry serves signed envelopes.
func (s *State) RecordEnvelope(key string) {
	if seen, ok := s.Registries[key]; ok {
		seen.Envelope = index.EnvelopeFormat
		s.Registries[key] = seen
	}
}

// RecordYanked remembers the versions ix yanks for key, replacing what
// was remembered from an older index.
func (s *State) RecordYanked(key string, ix *index.Index) {
	seen, ok := s.Registries[key]
	if !ok || seen.Version != ix.Version {
		return
	}
	seen.Yanked = nil
	for _, p := range ix.Plugins {
		for _, v := range p.Versions {
			if v.Yanked != nil {
				if seen.Yanked == nil {
					seen.Yanked = map[string]string{}
				}
				seen.Yanked[p.Name+"@"+v.Version] = v.Yanked.Reason
			}
		}
	}
	s.Registries[key] = seen
}

// YankedReason says whether registry name yanked plugin's version in the
// newest index read from it, and why.
func (s *State) YankedReason(name, plugin, version string) (string, bool) {
	for k, seen := range s.Registries {
		if n, _, _ := strings.Cut(k, "@"); n == name {
			if why, ok := seen.Yanked[plugin+"@"+version]; ok {
				return why, true
			}
		}
	}
	return "", false
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Trusted returns the root to verify the next index of key from: the
// root followed last time, or pinned (version 0) when none was.
func (s *State) Trusted(key string, pinned index.Roots) (index.Roots, int64, map[string]string) {
	seen, ok := s.Lookup(key)
	if !ok {
		return pinned, 0, nil
	}
	if seen.RootVersion == 0 || len(seen.RootKeys) == 0 {
		return pinned, 0, seen.Revoked
	}
	r := index.Roots{Threshold: seen.RootThreshold}
	for _, h := range seen.RootKeys {
		k, err := sign.ParsePublicKey(h)
		if err != nil {
			return pinned, 0, seen.Revoked
		}
		r.Keys = append(r.Keys, k)
	}
	return r, seen.RootVersion, seen.Revoked
}

// RevokedKeys returns every key id remembered as revoked for registry
// name (under any pinned root), with its reason.
func (s *State) RevokedKeys(name string) map[string]string {
	out := map[string]string{}
	for k, seen := range s.Registries {
		if n, _, _ := strings.Cut(k, "@"); n == name {
			maps.Copy(out, seen.Revoked)
		}
	}
	return out
}
