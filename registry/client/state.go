package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/internal/fsutil"
)

// State remembers, per configured registry, the newest index seen, so a
// replayed older index (rollback) is refused.
type State struct {
	Registries map[string]Seen `json:"registries"`
}

// Seen is the newest index seen from one registry.
type Seen struct {
	Version int64 `json:"version"`
	// Digest is the sha256 of the signed index payload at Version; the same
	// version with other content is refused too.
	Digest  string `json:"digest"`
	Expires string `json:"expires"`
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
func (s *State) Check(reg string, version int64, payload []byte) error {
	seen, ok := s.Registries[reg]
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
func (s *State) Record(reg string, version int64, payload []byte, expires string) {
	if seen, ok := s.Registries[reg]; ok && seen.Version > version {
		return
	}
	s.Registries[reg] = Seen{Version: version, Digest: digest(payload), Expires: expires}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
