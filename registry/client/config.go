package client

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/palvella/palvella/registry/internal/fsutil"
	"github.com/palvella/palvella/registry/owner"
	"github.com/palvella/palvella/registry/public"
	"github.com/palvella/palvella/registry/resolve"
	"github.com/palvella/palvella/registry/sign"
)

// Config is the client's registries configuration
// ($PALVELLA_HOME/registries.json): the registries it reads, in order,
// their pinned root keys and name patterns, and the trust policy applied to
// every install. The order is only the order of `registry list`: who may
// serve a name is decided by package owner.
type Config struct {
	Registries []RegistryConfig `json:"registries"`
	Policy     PolicyConfig     `json:"policy"`
	// MaxIndexBytes bounds the signed index read from any registry (0:
	// index.DefaultMaxSize, 32 MiB).
	MaxIndexBytes int64 `json:"maxIndexBytes,omitempty"`
	// Timeouts override the bounds of every download (see Timeouts).
	Timeouts TimeoutsConfig `json:"timeouts,omitzero"`
}

// TimeoutsConfig is Timeouts as written in the file: durations such as
// "10s" or "2m"; an empty field keeps the default.
type TimeoutsConfig struct {
	Connect string `json:"connect,omitempty"`
	Header  string `json:"header,omitempty"`
	Idle    string `json:"idle,omitempty"`
	Total   string `json:"total,omitempty"`
}

// Parse returns the timeouts, refusing a field that is not a positive
// duration and naming it.
func (t TimeoutsConfig) Parse() (Timeouts, error) {
	var out Timeouts
	for _, f := range []struct {
		name string
		in   string
		out  *time.Duration
	}{{"connect", t.Connect, &out.Connect}, {"header", t.Header, &out.Header}, {"idle", t.Idle, &out.Idle}, {"total", t.Total, &out.Total}} {
		if f.in == "" {
			continue
		}
		d, err := time.ParseDuration(f.in)
		if err != nil || d <= 0 {
			return Timeouts{}, fmt.Errorf("timeouts.%s: %q is not a positive duration such as 10s or 2m", f.name, f.in)
		}
		*f.out = d
	}
	return out, nil
}

// HTTPClient returns the HTTP client every download of this configuration
// goes through: NewHTTPClient with the configured timeouts.
func (c *Config) HTTPClient() (*http.Client, error) {
	t, err := c.Timeouts.Parse()
	if err != nil {
		return nil, err
	}
	return NewHTTPClient(t), nil
}

// RegistryConfig is one configured registry as written in the file.
type RegistryConfig struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	// RootKeys are pinned root public keys (hex). Empty for the public
	// registry means the key compiled into palvella.
	RootKeys  []string `json:"rootKeys,omitempty"`
	Threshold int      `json:"threshold,omitempty"`
	// Names are the plugin name patterns the registry was added for; empty
	// for an open registry (see package owner).
	Names []string `json:"names,omitempty"`
}

// PolicyConfig is the trust policy as written in the file (see
// resolve.Policy).
type PolicyConfig struct {
	OfficialOnly      bool     `json:"officialOnly,omitempty"`
	AllowedLicenses   []string `json:"allowedLicenses,omitempty"`
	TrustedPublishers []string `json:"trustedPublishers,omitempty"`
}

// ResolvePolicy returns the policy in the form the resolver takes.
func (p PolicyConfig) ResolvePolicy() resolve.Policy {
	return resolve.Policy{OfficialOnly: p.OfficialOnly, AllowedLicenses: p.AllowedLicenses, TrustedPublishers: p.TrustedPublishers}
}

// DefaultConfig is the configuration used when there is no file: the
// public registry only.
func DefaultConfig() *Config {
	return &Config{Registries: []RegistryConfig{{Name: public.Name, Location: public.Location}}}
}

// LoadConfig reads the configuration at path; a missing file means
// DefaultConfig. Unknown fields, a registry without a name or location, a
// name given twice, a name pattern that does not parse and a negative
// maxIndexBytes are refused, naming the field.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registries configuration: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("read registries configuration %s: %w (fix or delete the file; deleting it restores the default, the public registry only)", path, err)
	}
	seen := map[string]bool{}
	for i, r := range cfg.Registries {
		if r.Name == "" || seen[r.Name] || r.Location == "" {
			return nil, fmt.Errorf("registries configuration %s: registries[%d]: name must be set and unique, and location set", path, i)
		}
		seen[r.Name] = true
		for j, p := range r.Names {
			if q, err := owner.ParsePattern(p); err != nil || q != p {
				return nil, fmt.Errorf("registries configuration %s: registries[%d].names[%d]: %q is not a name pattern (such as acme-*)", path, i, j, p)
			}
		}
	}
	if cfg.MaxIndexBytes < 0 {
		return nil, fmt.Errorf("registries configuration %s: maxIndexBytes: must not be negative", path)
	}
	if _, err := cfg.Timeouts.Parse(); err != nil {
		return nil, fmt.Errorf("registries configuration %s: %w", path, err)
	}
	return &cfg, nil
}

// Save writes the configuration to path atomically (write a temporary
// file, fsync, rename), so a reader sees the old or the new file.
func (c *Config) Save(path string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode registries configuration: %w", err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// Lookup returns the index of the registry named name, or -1.
func (c *Config) Lookup(name string) int {
	return slices.IndexFunc(c.Registries, func(r RegistryConfig) bool { return r.Name == name })
}

// CheckNew refuses a name that is already configured.
func (c *Config) CheckNew(name string) error {
	if i := c.Lookup(name); i >= 0 {
		return fmt.Errorf("registry %q is already configured (at %s); remove it first with palvella registry remove %s", name, c.Registries[i].Location, name)
	}
	return nil
}

// Add inserts r at position (1 being first; 0: just before the public
// registry, or last without it). A name already configured is refused.
func (c *Config) Add(r RegistryConfig, position int) error {
	if err := c.CheckNew(r.Name); err != nil {
		return err
	}
	at := len(c.Registries)
	if i := c.Lookup(public.Name); i >= 0 {
		at = i
	}
	if position > 0 {
		at = min(position-1, len(c.Registries))
	}
	c.Registries = slices.Insert(c.Registries, at, r)
	return nil
}

// Remove deletes the registry named name; it reports whether it was there.
func (c *Config) Remove(name string) bool {
	i := c.Lookup(name)
	if i < 0 {
		return false
	}
	c.Registries = slices.Delete(c.Registries, i, i+1)
	return true
}

// Keys returns the pinned root keys of the registry: the key compiled into
// palvella for the public registry without keys of its own.
func (r RegistryConfig) Keys() ([]ed25519.PublicKey, error) {
	if len(r.RootKeys) == 0 && r.Name == public.Name {
		k, err := public.RootKey()
		if err != nil {
			return nil, err
		}
		return []ed25519.PublicKey{k}, nil
	}
	if len(r.RootKeys) == 0 {
		return nil, fmt.Errorf("registry %q has no pinned root key; remove it and add it again with --root-key", r.Name)
	}
	keys := make([]ed25519.PublicKey, 0, len(r.RootKeys))
	for _, h := range r.RootKeys {
		k, err := sign.ParsePublicKey(h)
		if err != nil {
			return nil, fmt.Errorf("registry %q: pinned root key: %w", r.Name, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Registry returns the registry in the form the Client reads.
func (r RegistryConfig) Registry() (Registry, error) {
	keys, err := r.Keys()
	if err != nil {
		return Registry{}, err
	}
	return Registry{Name: r.Name, Location: r.Location, RootKeys: keys, Threshold: r.Threshold, Names: r.Names}, nil
}

// ClientRegistries returns the configured registries in the form the
// Client reads. only, when set, names the one registry that will be read:
// a bad pinned key elsewhere is then skipped rather than blocking it, and
// an unknown name is refused.
func (c *Config) ClientRegistries(only string) ([]Registry, error) {
	var regs []Registry
	found := false
	for _, rc := range c.Registries {
		found = found || rc.Name == only
		r, err := rc.Registry()
		if err != nil {
			if only != "" && rc.Name != only {
				continue // not read; a bad key there must not block this one
			}
			return nil, err
		}
		regs = append(regs, r)
	}
	if only != "" && !found {
		return nil, fmt.Errorf("--registry %q: no such registry is configured (see palvella registry list)", only)
	}
	if len(regs) == 0 {
		return nil, errors.New("no registry is configured; add one with palvella registry add NAME URL --root-key KEY.pub")
	}
	return regs, nil
}

// ValidRegistryName reports whether s may name a configured registry: 1-64
// of A-Z a-z 0-9 . _ -.
func ValidRegistryName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
