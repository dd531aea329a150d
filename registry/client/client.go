// Package client is the plugin installer: it reads the configured
// registries in order, refuses rolled-back, frozen (expired) or badly
// signed indexes, resolves NAME@CONSTRAINT, downloads with size and sha256
// checks, installs atomically, and keeps the lock file.
//
// It prints nothing: progress is reported through a callback and every
// refusal is an *registry.Error.
package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/lock"
	"github.com/palvella/palvella/registry/public"
	"github.com/palvella/palvella/registry/resolve"
)

// Progress reports download progress of one artifact.
type Progress struct {
	Plugin, Version string
	// Done and Total are bytes; Total is the size the index declares.
	Done, Total int64
}

// Client installs plugins. Set the fields, then call its methods; a Client
// is not safe for concurrent installs into the same plugin directory.
type Client struct {
	// Registries are the configured registries. Which one serves a name is
	// decided by package owner (their Names and the first-party root), not
	// by their order.
	Registries []Registry
	// Only, when set, names the one registry Load reads; the claims of the
	// others still count when deciding who may serve a name.
	Only string
	// FirstPartyRoot is the root key of the first-party registry (nil: the
	// public registry's key compiled into palvella). Plugins are official,
	// and first-party names may be served, only from an index it signed.
	FirstPartyRoot ed25519.PublicKey
	// Builtins are the names of the plugins compiled into the core. They
	// are first-party names, and installing one replaces the builtin, which
	// needs Request.Replace.
	Builtins []string
	// Policy is the trust policy.
	Policy resolve.Policy
	// PluginDir is where plugins are installed (PluginDir/NAME/VERSION/NAME).
	PluginDir string
	// LockPath is the lock file, e.g. $PALVELLA_HOME/plugins.lock.
	LockPath string
	// StatePath remembers the newest index version seen per registry.
	StatePath string
	// Protocols are the plugin protocol versions the core speaks.
	Protocols []int
	// CoreVersion is the running core's version (optional).
	CoreVersion string
	// OS and Arch default to the running platform.
	OS, Arch string
	// HTTPClient is used for HTTP sources (nil: NewHTTPClient's, with
	// connect, idle and progress-aware total timeouts).
	HTTPClient *http.Client
	// MaxIndexSize bounds the signed index read from a registry (0:
	// index.DefaultMaxSize).
	MaxIndexSize int64
	// Now returns the current time (nil: time.Now); used for expiry checks.
	Now func() time.Time
	// OnProgress, when set, is called as artifacts download.
	OnProgress func(Progress)
	// KeepReplaced leaves the files of a version that an install replaces,
	// or that Remove removes, where they are: a running server may still
	// run them. The caller deletes them once nothing does (Collect).
	KeepReplaced bool
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return NewHTTPClient(Timeouts{})
}

func (c *Client) firstPartyRoot() ed25519.PublicKey {
	if c.FirstPartyRoot != nil {
		return c.FirstPartyRoot
	}
	k, err := public.RootKey()
	if err != nil {
		return nil
	}
	return k
}

// Loaded is a verified registry with the source it was read from.
type Loaded struct {
	resolve.Registry
	Source Source
}

// Load reads and verifies every configured registry, checks it against the
// rollback state and records the accepted versions. Any failing registry
// fails the whole load: silently skipping one would let a later registry
// answer for names the failing one owns.
func (c *Client) Load(ctx context.Context) ([]Loaded, error) {
	if len(c.Registries) == 0 {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "registries", "no registry is configured")
	}
	if c.StatePath == "" {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "statePath", "is empty; it is needed to refuse rolled-back indexes")
	}
	state, err := LoadState(c.StatePath)
	if err != nil {
		return nil, err
	}
	now := c.now()
	out := make([]Loaded, 0, len(c.Registries))
	seen := map[string]bool{}
	var keys []string
	for _, r := range c.Registries {
		if r.Name == "" || seen[r.Name] {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "registries", fmt.Sprintf("registry name %q is empty or repeated", r.Name))
		}
		seen[r.Name] = true
		if c.Only != "" && r.Name != c.Only {
			continue
		}
		l, err := c.loadOne(ctx, r, state, now)
		if err != nil {
			return nil, err
		}
		out = append(out, *l)
		keys = append(keys, StateKey(r))
	}
	if c.Only != "" && len(out) == 0 {
		return nil, &registry.Error{Kind: registry.ErrNotFound, Registry: c.Only, Detail: "no such registry is configured",
			Hint: "see palvella registry list"}
	}
	for i, l := range out {
		p, _ := l.Index.SignedPayload()
		state.RecordTrust(keys[i], l.Index.Version, p, l.Index.Expires, l.Trust)
		state.RecordYanked(keys[i], l.Index)
		if l.Index.IsEnvelope() && l.Trust != nil {
			state.RecordEnvelope(keys[i])
		}
	}
	if err := state.Save(c.StatePath); err != nil {
		return nil, fmt.Errorf("save registry state: %w", err)
	}
	return out, nil
}

func (c *Client) loadOne(ctx context.Context, r Registry, state *State, now time.Time) (*Loaded, error) {
	src, err := NewSource(r.Location, c.httpClient())
	if err != nil {
		return nil, unreachable(r, err)
	}
	if s, ok := src.(interface{ setMaxIndexSize(int64) }); ok {
		s.setMaxIndexSize(c.MaxIndexSize)
	}
	data, err := src.Index(ctx)
	if err != nil {
		return nil, unreachable(r, err)
	}
	// An envelope is verified over its raw bytes before its payload is
	// decoded (index.Open); a registry that once served one may not go
	// back to the format that is parsed first.
	envelope := index.IsEnvelope(data)
	if seen, ok := state.Lookup(StateKey(r)); ok && seen.Envelope >= index.EnvelopeFormat && !envelope {
		return nil, &registry.Error{Kind: registry.ErrRollback, Registry: r.Name, Field: "formatVersion",
			Detail: "this registry moved to signed envelopes (format 2), and this index is in the older format 1",
			Hint:   "a mirror or attacker is serving an old-format copy; report it to the registry operator (palvella registry reset-rollback " + r.Name + " forgets the format with the version, if the operator really went back)"}
	}
	var ix *index.Index
	var trust *index.Trust
	signed := !(len(r.RootKeys) == 0 && c.Policy.AllowUnsigned)
	if signed && envelope {
		roots, rootV, revoked := state.Trusted(StateKey(r), index.Roots{Keys: r.RootKeys, Threshold: r.Threshold})
		ix, trust, err = index.Open(data, index.VerifyOptions{Roots: roots, RootVersion: rootV, Revoked: revoked, Now: now})
	} else {
		ix, err = index.Parse(data)
	}
	if err != nil {
		return nil, withRegistry(err, r.Name)
	}
	// The index names the registry it was signed for; it must be the one
	// configured here, or a registry's other index (say its staging one,
	// signed by the same root) could be served in its place.
	if ix.Name != r.Name {
		return nil, &registry.Error{Kind: registry.ErrSignature, Registry: r.Name, Field: "name",
			Detail: fmt.Sprintf("the index is signed for registry %q, but it is configured as %q", ix.Name, r.Name),
			Hint:   "check the registry's location; to use this index, add it under its own name: palvella registry add " + ix.Name + " LOCATION --root-key KEY.pub"}
	}
	if !signed {
		if !now.Before(ix.ExpiresAt()) {
			return nil, &registry.Error{Kind: registry.ErrExpired, Registry: r.Name, Field: "expires",
				Detail: "index expired at " + ix.Expires, Hint: "ask the registry operator to re-sign it"}
		}
	} else if trust == nil {
		roots, rootV, revoked := state.Trusted(StateKey(r), index.Roots{Keys: r.RootKeys, Threshold: r.Threshold})
		trust, err = ix.VerifyWith(index.VerifyOptions{Roots: roots, RootVersion: rootV, Revoked: revoked, Now: now})
		if err != nil {
			return nil, withRegistry(err, r.Name)
		}
	}
	payload, err := ix.SignedPayload()
	if err != nil {
		return nil, err
	}
	if err := state.Check(r.Name, StateKey(r), ix.Version, payload); err != nil {
		return nil, err
	}
	firstParty := false
	if fp := c.firstPartyRoot(); fp != nil && trust != nil {
		// The first-party root itself must have signed: pinning its key
		// next to one's own, with a threshold of one, is not enough.
		firstParty = ix.CheckRootSignatures(index.Roots{Keys: []ed25519.PublicKey{fp}}) == nil
	}
	return &Loaded{Registry: resolve.Registry{Name: r.Name, Index: ix, Trust: trust, Names: r.Names, FirstParty: firstParty}, Source: src}, nil
}

// unreachable names the registry whose index could not be read and says
// what the user can do about it.
func unreachable(r Registry, err error) error {
	var re *registry.Error
	if errors.As(err, &re) && re.Registry == "" {
		cp := *re
		cp.Registry = r.Name
		if cp.Hint == "" {
			cp.Hint = unreachableHint(r.Name)
		}
		return &cp
	}
	return &registry.Error{Kind: registry.ErrUnreachable, Registry: r.Name, Detail: "cannot read its index", Err: err,
		Hint: unreachableHint(r.Name)}
}

func unreachableHint(name string) string {
	return "every configured registry must be read so none can take names another owns; use --registry NAME to read only the registry you need, or stop using this one with palvella registry remove " + name
}

// withRegistry names the configured registry in a registry error.
func withRegistry(err error, name string) error {
	var re *registry.Error
	if errors.As(err, &re) {
		cp := *re
		cp.Registry = name
		return &cp
	}
	return fmt.Errorf("registry %q: %w", name, err)
}

// Request is a plugin to install.
type Request struct {
	Name       string
	Constraint string
	// AllowYanked installs a yanked version, and only when Constraint pins
	// it exactly.
	AllowYanked bool
	// Registry is the registry the user chose; it is needed when several
	// may serve the name, and recorded in the lock either way.
	Registry string
	// Replace allows replacing a builtin plugin, or a plugin installed from
	// another source (a local file, another registry).
	Replace bool
}

// Result is what Install and Upgrade did.
type Result struct {
	Entry lock.Entry
	// Selection is the resolved version (nil for local installs).
	Selection *resolve.Selection
	// Notices are messages to show the user (advisories, yanked).
	Notices []string
	// Previous is the version that was replaced, if any.
	Previous string
}

// Resolve loads the registries and picks the version for req without
// installing anything.
func (c *Client) Resolve(ctx context.Context, req Request) (*resolve.Selection, Source, error) {
	loaded, err := c.Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.resolveIn(loaded, req, "")
}

// Registries returns every configured registry for resolution, in order:
// those in loaded with their verified index, the others (not read) with
// their claims only.
func (c *Client) resolveRegistries(loaded []Loaded) []resolve.Registry {
	regs := make([]resolve.Registry, 0, len(c.Registries))
	for _, r := range c.Registries {
		rr := resolve.Registry{Name: r.Name, Names: r.Names}
		for _, l := range loaded {
			if l.Name == r.Name {
				rr = l.Registry
			}
		}
		regs = append(regs, rr)
	}
	return regs
}

// Owner returns the registry among loaded that serves name (see
// resolve.Owner), with chosen as the user's explicit choice.
func (c *Client) Owner(loaded []Loaded, name, chosen string) (*resolve.Registry, *index.Plugin, error) {
	return resolve.Owner(c.resolveRegistries(loaded), resolve.Request{Name: name, Registry: chosen, Builtins: c.Builtins})
}

func (c *Client) resolveIn(loaded []Loaded, req Request, prefer string) (*resolve.Selection, Source, error) {
	regs := c.resolveRegistries(loaded)
	sel, err := resolve.Resolve(regs, resolve.Request{
		Name: req.Name, Constraint: req.Constraint, OS: c.OS, Arch: c.Arch,
		Protocols: c.Protocols, CoreVersion: c.CoreVersion, AllowYanked: req.AllowYanked,
		Registry: req.Registry, Prefer: prefer, Builtins: c.Builtins,
	}, c.Policy, c.now())
	if err != nil {
		return nil, nil, err
	}
	for _, l := range loaded {
		if l.Name == sel.Registry {
			return sel, l.Source, nil
		}
	}
	return nil, nil, fmt.Errorf("resolve %s: registry %q vanished", req.Name, sel.Registry)
}

// Install resolves req, downloads and verifies the artifact, installs it
// and records it in the lock file. Nothing is written to the plugin
// directory unless every check passed.
func (c *Client) Install(ctx context.Context, req Request) (*Result, error) {
	if err := c.checkDirs(); err != nil {
		return nil, err
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		return nil, err
	}
	prefer := ""
	if e := lf.Get(req.Name); e != nil && e.Source == lock.SourceRegistry {
		prefer = e.Registry // the choice recorded at the first install
	}
	loaded, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	sel, src, err := c.resolveIn(loaded, req, prefer)
	if err != nil {
		return nil, err
	}
	if err := c.checkReplace(lf, req.Name, lock.SourceRegistry, sel.Registry, req.Replace); err != nil {
		return nil, err
	}
	res, err := c.installSelection(ctx, src, sel, req.Constraint)
	if err != nil {
		return nil, withVersion(err, sel.Plugin.Name, sel.Version.Version)
	}
	return res, nil
}

// checkReplace refuses, unless replace, an install of name from source
// (and registry reg) that would replace a builtin plugin or a plugin
// installed from another source.
func (c *Client) checkReplace(lf *lock.File, name, source, reg string, replace bool) error {
	if replace {
		return nil
	}
	e := lf.Get(name)
	from := "registry " + reg
	if source == lock.SourceLocal {
		from = "a local file (unsigned)"
	}
	switch {
	case e == nil && slices.Contains(c.Builtins, name):
		return &registry.Error{Kind: registry.ErrReplace, Plugin: name,
			Detail: "it is a builtin plugin, compiled into palvella; installing it from " + from + " would replace the builtin",
			Hint:   "pass --replace if that is what you want"}
	case e == nil:
		return nil
	case e.Source != source:
		return &registry.Error{Kind: registry.ErrReplace, Plugin: name,
			Detail: fmt.Sprintf("%s %s is installed from %s; installing it from %s would replace it", name, e.Version, describeSource(e), from),
			Hint:   "pass --replace if that is what you want"}
	case source == lock.SourceRegistry && e.Registry != reg:
		return &registry.Error{Kind: registry.ErrReplace, Plugin: name,
			Detail: fmt.Sprintf("%s %s is installed from registry %s; installing it from %s would replace it", name, e.Version, e.Registry, from),
			Hint:   "pass --replace (or choose --registry " + e.Registry + ")"}
	}
	return nil
}

func describeSource(e *lock.Entry) string {
	if e.Source == lock.SourceLocal {
		return "a local file (unsigned)"
	}
	return "registry " + e.Registry
}

// withVersion names plugin name at version in a registry error that does
// not name a plugin yet, instead of adding a prefix that may repeat one.
func withVersion(err error, name, version string) error {
	var re *registry.Error
	if errors.As(err, &re) {
		if re.Plugin == "" {
			cp := *re
			cp.Plugin, cp.Version = name, version
			return &cp
		}
		return err
	}
	return fmt.Errorf("install %s@%s: %w", name, version, err)
}

// Upgrade re-resolves an installed plugin within the constraint recorded in
// the lock and installs a newer version if there is one. It returns nil,
// nil when the installed version is already the newest allowed.
func (c *Client) Upgrade(ctx context.Context, name string) (*Result, error) {
	return c.UpgradeFrom(ctx, name, "")
}

// UpgradeFrom is Upgrade that stays on the registry recorded in the lock,
// or moves to reg when it is not empty (the move replaces the plugin's
// source, so it is the caller's explicit choice).
func (c *Client) UpgradeFrom(ctx context.Context, name, reg string) (*Result, error) {
	if err := c.checkDirs(); err != nil {
		return nil, err
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		return nil, err
	}
	e := lf.Get(name)
	if e == nil {
		return nil, &registry.Error{Kind: registry.ErrNotFound, Plugin: name, Detail: "not installed", Hint: "install it with palvella plugin add"}
	}
	if e.Source == lock.SourceLocal {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Plugin: name,
			Detail: "installed from a local file", Hint: "install the new binary the same way"}
	}
	from := e.Registry
	if reg != "" {
		from = reg
	}
	known := false
	for _, r := range c.Registries {
		known = known || r.Name == from
	}
	if !known {
		return nil, &registry.Error{Kind: registry.ErrNotFound, Registry: from, Plugin: name,
			Detail: "the plugin was installed from this registry, which is no longer configured",
			Hint:   "add the registry again, or move the plugin to another one with --registry NAME"}
	}
	loaded, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	sel, src, err := c.resolveIn(loaded, Request{Name: name, Constraint: e.Constraint, Registry: from}, "")
	if err != nil {
		return nil, err
	}
	if sel.Version.Version == e.Version && sel.Registry == e.Registry {
		return nil, nil
	}
	if cmp, err := compareVersions(sel.Version.Version, e.Version); err == nil && cmp < 0 {
		return nil, nil
	}
	res, err := c.installSelection(ctx, src, sel, e.Constraint)
	if err != nil {
		return nil, withVersion(err, name, sel.Version.Version)
	}
	return res, nil
}

// Remove deletes an installed plugin and its lock entry.
func (c *Client) Remove(ctx context.Context, name string) error {
	if err := c.checkDirs(); err != nil {
		return err
	}
	if !index.ValidPluginName(name) {
		return registry.Errorf(registry.ErrInvalidArgument, "name", "is not a valid plugin name")
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		// A broken entry must not keep itself in: removing it is how the
		// user repairs the lock.
		if removed, rerr := lock.RemoveBroken(c.LockPath, name); rerr == nil && removed {
			return nil
		}
		return err
	}
	e := lf.Get(name)
	if e == nil {
		return &registry.Error{Kind: registry.ErrNotFound, Plugin: name, Detail: "not installed"}
	}
	dir := filepath.Join(c.PluginDir, name)
	lf.Delete(name)
	if err := lf.Save(c.LockPath); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if c.KeepReplaced {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: delete %s: %w", name, dir, err)
	}
	return nil
}

func (c *Client) checkDirs() error {
	if c.PluginDir == "" {
		return registry.Errorf(registry.ErrInvalidArgument, "pluginDir", "is empty")
	}
	if c.LockPath == "" {
		return registry.Errorf(registry.ErrInvalidArgument, "lockPath", "is empty")
	}
	return nil
}

// PlatformKey returns the "os/arch" the client installs for, as used in
// the lock file's artifacts map.
func PlatformKey(c *Client) string {
	o, a := c.OS, c.Arch
	if o == "" {
		o = runtime.GOOS
	}
	if a == "" {
		a = runtime.GOARCH
	}
	return o + "/" + a
}

// Collect deletes the installed versions that the lock no longer names
// and that inUse does not claim: each PluginDir/NAME/VERSION directory
// holding neither the lock's path for NAME nor a path inUse reports true
// for. It returns the directories it deleted. Directories of another shape
// (an install in progress, a file) are left alone.
func (c *Client) Collect(inUse func(dir string) bool) ([]string, error) {
	if err := c.checkDirs(); err != nil {
		return nil, err
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		return nil, err
	}
	names, err := os.ReadDir(c.PluginDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("collect unused plugin versions: %w", err)
	}
	var removed []string
	var errs []error
	for _, n := range names {
		if !n.IsDir() || !index.ValidPluginName(n.Name()) {
			continue
		}
		base := filepath.Join(c.PluginDir, n.Name())
		versions, err := os.ReadDir(base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var locked string
		if e := lf.Get(n.Name()); e != nil {
			locked = e.Path
		}
		left := 0
		for _, v := range versions {
			dir := filepath.Join(base, v.Name())
			if !v.IsDir() || within(locked, dir) || (inUse != nil && inUse(dir)) {
				left++
				continue
			}
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("delete unused plugin version %s: %w", dir, err))
				left++
				continue
			}
			removed = append(removed, dir)
		}
		if left == 0 {
			os.Remove(base) // only if empty
		}
	}
	return removed, errors.Join(errs...)
}

// within reports whether path lies inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return path != "" && err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
