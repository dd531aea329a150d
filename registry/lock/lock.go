// Package lock reads and writes the lock file of installed plugins
// ($PALVELLA_HOME/plugins.lock): what is installed, from where, and the
// sha256 the core checks at every launch.
package lock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/fsutil"
)

// FormatVersion is the lock file format this package writes.
const FormatVersion = 1

// Sources of an installed plugin.
const (
	SourceRegistry = "registry"
	SourceLocal    = "local"
)

// File is the lock file.
type File struct {
	FormatVersion int     `json:"formatVersion"`
	Plugins       []Entry `json:"plugins"`
}

// Entry is one installed plugin.
type Entry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Constraint is what the user asked for; Upgrade stays within it.
	Constraint string `json:"constraint,omitempty"`
	// Source is "registry" or "local" (installed from a file, unsigned).
	Source string `json:"source"`
	// Registry is the name of the registry it came from.
	Registry         string   `json:"registry,omitempty"`
	Categories       []string `json:"categories"`
	ProtocolVersions []int    `json:"protocolVersions"`
	// Path of the installed executable.
	Path string `json:"path"`
	// SHA256 of the installed executable: the core's launch-time checksum.
	SHA256 string `json:"sha256"`
	// Artifacts maps "os/arch" to the sha256 of that platform's artifact in
	// the registry, so a lock can be checked on any platform.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	// SignedBy are the publisher key ids whose signatures verified.
	SignedBy []string `json:"signedBy,omitempty"`
	// Unpacked is true when the executable was unpacked from an archive
	// artifact: SHA256 is then the executable's, not the artifact's. When
	// false, SHA256 equals this platform's entry in Artifacts, and a lock
	// where it does not was edited by hand (CheckArtifact).
	Unpacked bool `json:"unpacked,omitempty"`
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Load reads a lock file; a missing file is an empty lock.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{FormatVersion: FormatVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock file: %w", err)
	}
	return Parse(data)
}

// Parse decodes and validates a lock file.
func Parse(data []byte) (*File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidIndex, Field: "plugins.lock", Detail: "not a valid lock file", Err: err}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks every entry.
func (f *File) Validate() error {
	if f.FormatVersion != FormatVersion {
		return registry.Errorf(registry.ErrInvalidIndex, "formatVersion", fmt.Sprintf("unsupported lock format %d", f.FormatVersion))
	}
	seen := map[string]bool{}
	for i, e := range f.Plugins {
		p := fmt.Sprintf("plugins[%d]", i)
		switch {
		case !index.ValidPluginName(e.Name):
			return registry.Errorf(registry.ErrInvalidIndex, p+".name", "is not a valid plugin name")
		case seen[e.Name]:
			return registry.Errorf(registry.ErrInvalidIndex, p+".name", "duplicate plugin "+e.Name)
		case e.Version == "":
			return registry.Errorf(registry.ErrInvalidIndex, p+".version", "is empty")
		case e.Source != SourceRegistry && e.Source != SourceLocal:
			return registry.Errorf(registry.ErrInvalidIndex, p+".source", `must be "registry" or "local"`)
		case e.Path == "":
			return registry.Errorf(registry.ErrInvalidIndex, p+".path", "is empty")
		case !hex64.MatchString(e.SHA256):
			return registry.Errorf(registry.ErrInvalidIndex, p+".sha256", "must be 64 hex digits")
		}
		for k, v := range e.Artifacts {
			if !hex64.MatchString(v) {
				return registry.Errorf(registry.ErrInvalidIndex, p+".artifacts."+k, "must be 64 hex digits")
			}
		}
		seen[e.Name] = true
	}
	return nil
}

// Broken is a lock entry that cannot be used: it does not decode or does
// not validate. Name is its name when it has a readable one.
type Broken struct {
	Index int
	Name  string
	Err   error
}

// LoadLenient reads a lock file like Load, but a broken entry does not
// fail the whole file: the entries that validate are returned in the File,
// the others as Broken, so that listing and hosting the good plugins goes
// on. Only a file that is not a lock at all is an error. The File returned
// must not be saved: it lacks the broken entries.
func LoadLenient(path string) (*File, []Broken, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{FormatVersion: FormatVersion}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read lock file: %w", err)
	}
	return ParseLenient(data)
}

// ParseLenient decodes a lock file, setting broken entries apart (see
// LoadLenient).
func ParseLenient(data []byte) (*File, []Broken, error) {
	var raw struct {
		FormatVersion int               `json:"formatVersion"`
		Plugins       []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, &registry.Error{Kind: registry.ErrInvalidIndex, Field: "plugins.lock", Detail: "not a valid lock file", Err: err}
	}
	if raw.FormatVersion != FormatVersion {
		return nil, nil, registry.Errorf(registry.ErrInvalidIndex, "formatVersion", fmt.Sprintf("unsupported lock format %d", raw.FormatVersion))
	}
	f := &File{FormatVersion: FormatVersion}
	var broken []Broken
	for i, msg := range raw.Plugins {
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		err := dec.Decode(&e)
		if err != nil {
			var name struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(msg, &name) // best effort, for the message
			e.Name = name.Name
			err = &registry.Error{Kind: registry.ErrInvalidIndex, Field: fmt.Sprintf("plugins[%d]", i), Detail: "not a valid lock entry", Err: err}
		} else {
			one := File{FormatVersion: FormatVersion, Plugins: append(slices.Clone(f.Plugins), e)}
			if verr := one.Validate(); verr != nil {
				err = reindex(verr, len(f.Plugins), i)
			}
		}
		if err != nil {
			if !index.ValidPluginName(e.Name) {
				e.Name = ""
			}
			broken = append(broken, Broken{Index: i, Name: e.Name, Err: err})
			continue
		}
		f.Plugins = append(f.Plugins, e)
	}
	return f, broken, nil
}

// reindex renames plugins[from] to plugins[to] in a validation error, so
// it names the entry's place in the file.
func reindex(err error, from, to int) error {
	var re *registry.Error
	if errors.As(err, &re) && from != to {
		cp := *re
		cp.Field = strings.Replace(cp.Field, fmt.Sprintf("plugins[%d]", from), fmt.Sprintf("plugins[%d]", to), 1)
		return &cp
	}
	return err
}

// CheckArtifact says whether e's recorded executable hash agrees with the
// artifact hash recorded for platform ("os/arch"): for an executable that
// was downloaded as is (not Unpacked), they are the same bytes. A
// difference means the lock was edited by hand. It returns nil when the
// entry records no artifact for platform, or was unpacked or installed
// from a local file.
func (e *Entry) CheckArtifact(platform string) error {
	if e.Source != SourceRegistry || e.Unpacked {
		return nil
	}
	want, ok := e.Artifacts[platform]
	if !ok || want == e.SHA256 {
		return nil
	}
	return &registry.Error{Kind: registry.ErrChecksum, Plugin: e.Name, Version: e.Version, Field: "sha256",
		Detail: fmt.Sprintf("the lock records sha256 %s for the executable, but %s for the %s artifact it was installed from; the lock was edited by hand", e.SHA256, want, platform),
		Hint:   "reinstall it (palvella plugin remove NAME, then palvella plugin add NAME) and find out who edited the lock"}
}

// RemoveBroken deletes the entries named name from the lock file at path
// without validating the others, and reports whether one was there. It is
// how a broken entry (see LoadLenient) is removed; the file's other
// entries are kept byte for byte.
func RemoveBroken(path, name string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read lock file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return false, &registry.Error{Kind: registry.ErrInvalidIndex, Field: "plugins.lock", Detail: "not a valid lock file", Err: err}
	}
	var plugins []json.RawMessage
	if err := json.Unmarshal(raw["plugins"], &plugins); err != nil {
		return false, &registry.Error{Kind: registry.ErrInvalidIndex, Field: "plugins", Detail: "is not a list", Err: err}
	}
	kept := plugins[:0]
	for _, p := range plugins {
		var e struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(p, &e) == nil && e.Name == name {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == len(plugins) {
		return false, nil
	}
	if raw["plugins"], err = json.Marshal(kept); err != nil {
		return false, fmt.Errorf("encode lock file: %w", err)
	}
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return false, fmt.Errorf("encode lock file: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, append(out, '\n'), 0o644); err != nil {
		return false, fmt.Errorf("save lock file: %w", err)
	}
	return true, nil
}

// Save writes the lock file atomically, plugins sorted by name.
func (f *File) Save(path string) error {
	f.FormatVersion = FormatVersion
	slices.SortFunc(f.Plugins, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	if err := f.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lock file: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save lock file: %w", err)
	}
	return nil
}

// Get returns the entry for name, or nil.
func (f *File) Get(name string) *Entry {
	for i := range f.Plugins {
		if f.Plugins[i].Name == name {
			return &f.Plugins[i]
		}
	}
	return nil
}

// Put adds or replaces the entry with e.Name.
func (f *File) Put(e Entry) {
	if old := f.Get(e.Name); old != nil {
		*old = e
		return
	}
	f.Plugins = append(f.Plugins, e)
}

// Delete removes the entry for name and reports whether it existed.
func (f *File) Delete(name string) bool {
	n := len(f.Plugins)
	f.Plugins = slices.DeleteFunc(f.Plugins, func(e Entry) bool { return e.Name == name })
	return len(f.Plugins) != n
}

// Check is the result of verifying one installed plugin.
type Check struct {
	Name string
	Path string
	// Edited is true when the lock entry disagrees with the binary's
	// manifest or with its recorded artifact: the lock was edited by hand.
	// Broken is true when the entry itself is unusable (LoadLenient).
	Edited, Broken bool
	// Err is nil when the installed file matches the lock; otherwise an
	// *registry.Error of kind ErrChecksum (changed) or ErrNotFound (missing).
	Err error
}

// Verify re-hashes every installed plugin against the lock. It returns one
// Check per plugin and, if any failed, an error joining the failures.
func (f *File) Verify() ([]Check, error) {
	var checks []Check
	var errs []error
	for _, e := range f.Plugins {
		c := Check{Name: e.Name, Path: e.Path, Err: VerifyEntry(&e)}
		if c.Err != nil {
			errs = append(errs, c.Err)
		}
		checks = append(checks, c)
	}
	return checks, errors.Join(errs...)
}

// VerifyEntry re-hashes one installed plugin against its entry.
func VerifyEntry(e *Entry) error {
	sum, _, err := fsutil.HashFile(e.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &registry.Error{Kind: registry.ErrNotFound, Plugin: e.Name, Version: e.Version,
			Detail: "installed binary " + e.Path + " is missing", Hint: "reinstall it with palvella plugin add"}
	}
	if err != nil {
		return fmt.Errorf("verify plugin %q: %w", e.Name, err)
	}
	if sum != e.SHA256 {
		return &registry.Error{Kind: registry.ErrChecksum, Plugin: e.Name, Version: e.Version,
			Detail: fmt.Sprintf("installed binary %s has sha256 %s, the lock records %s", e.Path, sum, e.SHA256),
			Hint:   "the file was changed after install; reinstall it and find out who changed it"}
	}
	return nil
}
