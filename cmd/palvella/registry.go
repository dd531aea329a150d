package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/core/version"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/manifest"
	"github.com/palvella/palvella/registry/owner"
	"github.com/palvella/palvella/registry/public"
	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/server"
	"github.com/palvella/palvella/registry/sign"
	"github.com/spf13/cobra"
)

// Files under $PALVELLA_HOME that hold the client's registry state.
const (
	registriesFile = "registries.json"       // ordered registries, pinned root keys, trust policy
	stateFile      = "registries.state.json" // newest index version seen per registry (rollback/freeze)
	pluginsDirName = "plugins"
	lockFileName   = "plugins.lock"
)

// defaultListen is where `palvella registry serve` listens by default.
const defaultListen = "127.0.0.1:7710"

func (app *App) registriesPath() string { return filepath.Join(app.Home, registriesFile) }
func (app *App) statePath() string      { return filepath.Join(app.Home, stateFile) }
func (app *App) pluginDir() string      { return filepath.Join(app.Home, pluginsDirName) }
func (app *App) lockPath() string       { return filepath.Join(app.Home, lockFileName) }

// loadRegistries reads $PALVELLA_HOME/registries.json; a missing file
// means the default: the public registry only.
func (app *App) loadRegistries() (*client.Config, error) {
	return client.LoadConfig(app.registriesPath())
}

// registryHTTPClient is the HTTP client of registry downloads, with the
// timeouts of registries.json (defaults without the file).
func (app *App) registryHTTPClient() (*http.Client, error) {
	cfg, err := app.loadRegistries()
	if err != nil {
		return nil, err
	}
	return cfg.HTTPClient()
}

// registryClient builds the installer from the configuration. only, when
// set, restricts it to one configured registry.
func (app *App) registryClient(only string) (*client.Client, *client.Config, error) {
	cfg, err := app.loadRegistries()
	if err != nil {
		return nil, nil, err
	}
	regs, err := cfg.ClientRegistries(only)
	if err != nil {
		return nil, nil, err
	}
	httpc, err := cfg.HTTPClient()
	if err != nil {
		return nil, nil, err
	}
	c := &client.Client{
		Registries:   regs,
		Policy:       cfg.Policy.ResolvePolicy(),
		PluginDir:    app.pluginDir(),
		LockPath:     app.lockPath(),
		StatePath:    app.statePath(),
		Protocols:    sdk.ProtocolVersions,
		CoreVersion:  version.Version,
		Only:         only,
		Builtins:     app.builtinNames(),
		MaxIndexSize: cfg.MaxIndexBytes,
		HTTPClient:   httpc,
	}
	return c, cfg, nil
}

// builtinNames are the names of the plugins compiled into palvella: they
// are first-party names, and installing one replaces the builtin.
func (app *App) builtinNames() []string {
	names := make([]string, 0, len(app.Builtins))
	for _, b := range app.Builtins {
		names = append(names, b.Name)
	}
	return names
}

func newRegistryCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Configure the registries plugins come from, or run your own",
		Long: `A registry is a folder of static files: a signed index (index.json) and the
plugin binaries it lists. Clients pin each registry's root public key; the
index is never trusted to name its own keys.

Client side: names have owners, whatever the order. First-party names (the
builtins, and what the public registry's root marks official) come only from
an index signed by the public registry's root key. A registry added with
--names owns the names matching its patterns; an open registry (added
without --names, like the public one) may serve any other name. A name that
two registries may serve needs --registry NAME once; the lock records it and
upgrades stay there. Configuration lives in $PALVELLA_HOME/registries.json;
the newest index seen from each registry (by name and root key) is
remembered in $PALVELLA_HOME/registries.state.json so an old index replayed
later is refused, even after the registry is removed and added again.

Publisher side: keygen, init, publish, yank, resign, delegate, serve, verify,
export and import manage a registry folder; revoke-key, rotate-root and
sign-artifacts recover from a lost key. See docs/registry/hosting.md and
docs/registry/keys.md.`,
	}
	cmd.AddCommand(
		newRegistryAddCmd(app), newRegistryListCmd(app), newRegistryRemoveCmd(app), newRegistryResetRollbackCmd(app),
		newRegistryKeygenCmd(app), newRegistryInitCmd(app), newRegistryPublishCmd(app),
		newRegistryYankCmd(app), newRegistryResignCmd(app), newRegistryDelegateCmd(app),
		newRegistryServeCmd(app), newRegistryVerifyCmd(app),
		newRegistryExportCmd(app), newRegistryImportCmd(app),
		newRegistryRevokeKeyCmd(app), newRegistryRotateRootCmd(app), newRegistrySignArtifactsCmd(app),
	)
	return cmd
}

// ---- client side --------------------------------------------------------

func newRegistryAddCmd(app *App) *cobra.Command {
	var keyFiles, names []string
	var threshold, position int
	cmd := &cobra.Command{
		Use:   "add NAME URL|PATH --root-key PUBFILE [--names PATTERN]",
		Short: "Configure a registry and pin its root key",
		Long: `Configure a registry: an http(s) URL of a registry served with
'palvella registry serve' (or any static web server), a folder holding
index.json (a registry folder or an imported bundle), or an index file.

--root-key pins the registry's root public key (KEY.pub as written by
'palvella registry keygen'); give it several times with --threshold to require
several root signatures. The index is read and verified against the key
before the registry is saved, so a typo is caught now rather than at install.
NAME must be the name the index is signed for.

--names gives the plugin names the registry owns: path patterns such as
'acme-*' or a prefix such as 'acme-' (repeatable). No other registry may
serve those names. Without --names the registry is open: it may serve any
name that is neither first-party nor owned by a registry added for it, and a
name that several open registries list needs --registry at install.
First-party names (the builtins and the public registry's official plugins)
come only from the public registry's root key, whatever the flags.

The order (--position, default just before the public registry) is only the
order of 'registry list'. Adding a registry named "public" without
--root-key points the public registry at a mirror, still checked against
the key compiled into palvella.`,
		Example: `  palvella registry add acme https://plugins.acme.example --root-key acme-root.pub --names 'acme-*'
  palvella registry add local ./my-registry --root-key root.pub
  palvella registry add public /mnt/mirror/registry.json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, loc := args[0], args[1]
			if !client.ValidRegistryName(name) {
				return fmt.Errorf("registry name %q: use 1-64 of A-Z a-z 0-9 . _ -", name)
			}
			var patterns []string
			for _, n := range names {
				for _, p := range strings.Split(n, ",") {
					q, err := owner.ParsePattern(strings.TrimSpace(p))
					if err != nil {
						return fmt.Errorf("--names: %w", err)
					}
					if !slices.Contains(patterns, q) {
						patterns = append(patterns, q)
					}
				}
			}
			if len(patterns) > owner.MaxPatterns {
				return fmt.Errorf("--names: at most %d patterns", owner.MaxPatterns)
			}
			if len(keyFiles) == 0 && name != public.Name {
				return errors.New("--root-key is required: a registry is trusted only through a root key you pin (ask its operator for KEY.pub)")
			}
			if threshold < 0 || threshold > len(keyFiles) {
				return fmt.Errorf("--threshold %d: must be between 1 and the number of --root-key files (%d)", threshold, len(keyFiles))
			}
			if !strings.HasPrefix(loc, "http://") && !strings.HasPrefix(loc, "https://") {
				abs, err := filepath.Abs(loc)
				if err != nil {
					return fmt.Errorf("registry location %s: %w", loc, err)
				}
				loc = abs
			}
			rc := client.RegistryConfig{Name: name, Location: loc, Threshold: threshold, Names: patterns}
			for _, f := range keyFiles {
				k, err := sign.LoadPublicKey(f)
				if err != nil {
					return fmt.Errorf("--root-key %s: %w", f, err)
				}
				rc.RootKeys = append(rc.RootKeys, sign.EncodePublicKey(k))
			}
			cfg, err := app.loadRegistries()
			if err != nil {
				return err
			}
			if err := cfg.CheckNew(name); err != nil {
				return err
			}
			// Check that the registry can be read and verified with the key
			// before saving it; a bad key or location would otherwise break
			// every later install.
			reg, err := rc.Registry()
			if err != nil {
				return err
			}
			httpc, err := cfg.HTTPClient()
			if err != nil {
				return err
			}
			c := &client.Client{Registries: []client.Registry{reg}, StatePath: app.statePath(), MaxIndexSize: cfg.MaxIndexBytes, HTTPClient: httpc}
			loaded, err := c.Load(cmd.Context())
			if err != nil {
				return err
			}
			if err := cfg.Add(rc, position); err != nil {
				return err
			}
			if err := cfg.Save(app.registriesPath()); err != nil {
				return err
			}
			ix := loaded[0].Index
			fmt.Fprintf(app.Out, "Added registry %s (%s): index %q version %d, %d plugins, valid until %s.\n",
				name, loc, ix.Name, ix.Version, len(ix.Plugins), ix.Expires)
			if len(patterns) > 0 {
				fmt.Fprintf(app.Out, "It owns plugin names matching %s.\n", strings.Join(patterns, ", "))
			} else {
				fmt.Fprintln(app.Out, "It is open: it may serve any name no other registry owns; a name another open registry also lists needs --registry at install.")
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "root-key", nil, "pinned root public key file (KEY.pub); repeatable")
	cmd.Flags().StringArrayVar(&names, "names", nil, "plugin names this registry owns: a pattern such as 'acme-*' or a prefix such as 'acme-'; repeatable or comma-separated (default: open)")
	cmd.Flags().IntVar(&threshold, "threshold", 0, "how many of the root keys must sign the index (default 1)")
	cmd.Flags().IntVar(&position, "position", 0, "place in the list, 1 being first (default: just before the public registry); it does not decide who serves a name")
	return cmd
}

// registryRow is one line of `palvella registry list`.
type registryRow struct {
	Position  int      `json:"position"`
	Name      string   `json:"name"`
	Location  string   `json:"location"`
	RootKeys  []string `json:"rootKeyIds"`
	Embedded  bool     `json:"embeddedRootKey,omitempty"`
	Threshold int      `json:"threshold"`
	Names     []string `json:"names,omitempty"`
	// SeenVersion is the newest index version accepted from it (0: never read).
	SeenVersion int64  `json:"seenVersion,omitempty"`
	Expires     string `json:"expires,omitempty"`
}

func newRegistryListCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the configured registries in the order they are read",
		Long: `List the configured registries in order (the first listing a plugin name owns
it), with the key ids of their pinned root keys, the newest index version
accepted from each (older ones are refused) and its expiry. With -o json the
trust policy is included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, err := app.loadRegistries()
			if err != nil {
				return err
			}
			state, err := client.LoadState(app.statePath())
			if err != nil {
				return err
			}
			rows := make([]registryRow, 0, len(cfg.Registries))
			for i, r := range cfg.Registries {
				keys, err := r.Keys()
				if err != nil {
					return err
				}
				row := registryRow{Position: i + 1, Name: r.Name, Location: r.Location, Embedded: len(r.RootKeys) == 0, Threshold: max(r.Threshold, 1), Names: r.Names}
				for _, k := range keys {
					row.RootKeys = append(row.RootKeys, sign.KeyID(k))
				}
				if s, ok := state.Lookup(client.StateKey(client.Registry{Name: r.Name, RootKeys: keys})); ok {
					row.SeenVersion, row.Expires = s.Version, s.Expires
				}
				rows = append(rows, row)
			}
			if output == "json" {
				return writeJSON(app.Out, struct {
					Registries []registryRow       `json:"registries"`
					Policy     client.PolicyConfig `json:"policy"`
				}{rows, cfg.Policy})
			}
			t := newTable(app.Out, "#", "NAME", "LOCATION", "ROOT KEYS", "NAMES", "SEEN", "EXPIRES")
			for _, r := range rows {
				keys := strings.Join(r.RootKeys, ",")
				if r.Embedded {
					keys += " (built in)"
				}
				seen := "-"
				if r.SeenVersion > 0 {
					seen = fmt.Sprintf("v%d", r.SeenVersion)
				}
				owns := "(open)"
				if len(r.Names) > 0 {
					owns = strings.Join(r.Names, ",")
				}
				t.row(fmt.Sprint(r.Position), r.Name, r.Location, keys, owns, seen, orDash(r.Expires))
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newRegistryRemoveCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop reading a registry",
		Long: `Remove a registry from the configuration. Installed plugins stay installed
and keep working (they are checked against the lock file, not the registry);
'plugin upgrade' can no longer find new versions of those that came from it.

The newest index version seen from it is kept (by name and root key), so
adding it again later still refuses an older index; to forget it, run
'palvella registry reset-rollback NAME'.

Removing "public" stops reading the public registry (for example on a
network without internet access); add it back with 'palvella registry add
public URL|PATH'.`,
		Example: `  palvella registry remove acme`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := app.loadRegistries()
			if err != nil {
				return err
			}
			if !cfg.Remove(args[0]) {
				return fmt.Errorf("registry %q is not configured (see palvella registry list)", args[0])
			}
			if err := cfg.Save(app.registriesPath()); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "Removed registry %s.\n", args[0])
			return nil
		},
	}
}

func newRegistryResetRollbackCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "reset-rollback NAME",
		Short: "Forget the newest index version seen from a registry",
		Long: `Forget the newest index version seen from registry NAME (under every root
key), so the next index read from it is trusted as the newest. Do this only
when the registry's operator has really started again from a lower version
(a new registry under an old name): it is also exactly what an attacker
replaying an old index would want. Each reset is recorded, with the version
forgotten and the time, in $PALVELLA_HOME/registries.state.json and printed
to stderr.`,
		Example: `  palvella registry reset-rollback acme`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			state, err := client.LoadState(app.statePath())
			if err != nil {
				return err
			}
			resets := state.Reset(args[0], time.Now())
			if len(resets) == 0 {
				fmt.Fprintf(app.Out, "Nothing is remembered for registry %s.\n", args[0])
				return nil
			}
			if err := state.Save(app.statePath()); err != nil {
				return fmt.Errorf("reset rollback memory of %q: %w", args[0], err)
			}
			for _, r := range resets {
				fmt.Fprintf(app.Err, "level=WARN msg=\"rollback memory reset\" registry=%s key=%s forgotten_version=%d at=%s\n", r.Registry, r.Key, r.Version, r.At)
			}
			fmt.Fprintf(app.Out, "Forgot the newest index version seen from registry %s; the next index read from it is trusted as the newest.\n", args[0])
			return nil
		},
	}
}

// ---- publisher side -----------------------------------------------------

func newRegistryKeygenCmd(app *App) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out KEY",
		Short: "Generate an ed25519 signing key (KEY and KEY.pub)",
		Long: `Generate an ed25519 key pair: KEY holds the private key (mode 0600; it is
refused later if others can read it) and KEY.pub the public key that clients
pin. Use one as the root key of a registry and, for larger registries, others
as publisher keys delegated by the root. An existing KEY is never overwritten.

Keep root keys offline; never put them in the registry folder.`,
		Example: `  palvella registry keygen --out ~/keys/acme-root.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required: the path of the private key to write")
			}
			pub, priv, err := sign.Generate()
			if err != nil {
				return fmt.Errorf("generate key: %w", err)
			}
			if err := sign.WriteKeyPair(out, priv); err != nil {
				return fmt.Errorf("write key %s: %w", out, err)
			}
			fmt.Fprintf(app.Out, "Wrote %s (private: keep it secret and offline) and %s.pub (public).\nKey id: %s\n", out, out, sign.KeyID(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "path of the private key file to write (the public key goes to PATH.pub)")
	return cmd
}

// signingFlags are the flags of every command that re-signs an index.
type signingFlags struct {
	rootKey   string
	coSigners []string
	validity  time.Duration
}

func (s *signingFlags) add(cmd *cobra.Command, keyFlag, keyHelp string) {
	cmd.Flags().StringVar(&s.rootKey, keyFlag, "", keyHelp)
	cmd.Flags().StringArrayVar(&s.coSigners, "co-signer", nil, "further root key that signs the index too (for clients with a threshold); repeatable")
	cmd.Flags().DurationVar(&s.validity, "expires", publish.DefaultValidity, "how long the re-signed index stays valid; clients refuse it afterwards")
}

func (s *signingFlags) options(keyFlag string) (publish.Options, error) {
	if s.rootKey == "" {
		return publish.Options{}, fmt.Errorf("--%s is required: the root key that signs the index", keyFlag)
	}
	if s.validity <= 0 {
		return publish.Options{}, fmt.Errorf("--expires %s: must be positive", s.validity)
	}
	root, err := sign.LoadPrivateKey(s.rootKey)
	if err != nil {
		return publish.Options{}, fmt.Errorf("--%s %s: %w", keyFlag, s.rootKey, err)
	}
	o := publish.Options{RootKey: root, Validity: s.validity}
	for _, f := range s.coSigners {
		k, err := sign.LoadPrivateKey(f)
		if err != nil {
			return publish.Options{}, fmt.Errorf("--co-signer %s: %w", f, err)
		}
		o.CoSigners = append(o.CoSigners, k)
	}
	return o, nil
}

func printIndexLine(app *App, what string, ix *index.Index) {
	fmt.Fprintf(app.Out, "%s: registry %s, index version %d, valid until %s.\n", what, ix.Name, ix.Version, ix.Expires)
}

func newRegistryInitCmd(app *App) *cobra.Command {
	var name string
	var sf signingFlags
	cmd := &cobra.Command{
		Use:   "init DIR --name NAME --root-key KEY",
		Short: "Create a registry folder with an empty, signed index",
		Long: `Create DIR/index.json: an empty index named NAME, version 1, signed by the
root key. Serve the folder with 'palvella registry serve' or any static web
server, and give clients KEY.pub to pin.`,
		Example: `  palvella registry keygen --out root.key
  palvella registry init ./acme --name acme --root-key root.key --expires 720h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return errors.New("--name is required: the registry's name (1-64 of A-Z a-z 0-9 . _ -)")
			}
			o, err := sf.options("root-key")
			if err != nil {
				return err
			}
			ix, err := publish.Init(args[0], name, o)
			if err != nil {
				return fmt.Errorf("create registry %s: %w", args[0], err)
			}
			printIndexLine(app, "Created "+filepath.Join(args[0], client.IndexFile), ix)
			fmt.Fprintf(app.Out, "Clients add it with: palvella registry add %s URL|PATH --root-key %s.pub\n", name, sf.rootKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the registry's name")
	sf.add(cmd, "root-key", "root private key that signs the index")
	return cmd
}

func newRegistryPublishCmd(app *App) *cobra.Command {
	var (
		sf              signingFlags
		key             string
		req             publish.PublishRequest
		manifestFile    string
		publisherFlagNm = "key"
	)
	cmd := &cobra.Command{
		Use:   "publish DIR --key KEY --plugin BINARY --name NAME --version V",
		Short: "Add a plugin binary to a registry, signed",
		Long: `Copy a plugin binary into the registry as artifacts/NAME/VERSION/NAME_OS_ARCH,
record its size and sha256, sign it with the publisher key and re-sign the
index with the root key. The binary is run with --describe (10 s limit) and
its manifest must agree with --name and --version. A published platform of a
version can never be replaced: publish a new version instead.

--key is the publisher key; it must have been delegated the plugin's name
with 'palvella registry delegate' (a name outside its delegation is refused).
The index is signed by --root-key when given; without it, by --key: the
registry's root key itself (then, as in a small registry, it is delegated
every plugin name automatically), or a publisher key delegated with --index,
so the root key stays offline. Publishing the same bytes again under another
key adds that key's signature (after a key was revoked); other bytes for a
published platform are refused.

For a binary built for another platform (--os/--arch), pass its manifest with
--manifest FILE (the output of BINARY --describe on its own platform).
--base-url makes the index point at BASE_URL/NAME_OS_ARCH instead of the copy
in the folder, for artifacts hosted elsewhere (such as release downloads).`,
		Example: `  palvella registry publish ./acme --key root.key --plugin ./bin/engine-acme \
      --name engine-acme --version 1.0.0 --license Apache-2.0 --description "Runs jobs on Acme"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if key == "" {
				return fmt.Errorf("--%s is required: the publisher key that signs the binary", publisherFlagNm)
			}
			if req.Binary == "" {
				return errors.New("--plugin is required: the plugin binary to publish")
			}
			pk, err := sign.LoadPrivateKey(key)
			if err != nil {
				return fmt.Errorf("--key %s: %w", key, err)
			}
			// Without --root-key, a key that is the registry's root signs
			// the index as before; any other key publishes alone, signing
			// the index under its delegation (made with delegate --index).
			if sf.rootKey == "" && publish.IsRoot(dir, pk.Public().(ed25519.PublicKey)) {
				sf.rootKey = key
			}
			o, err := publisherOptions(&sf, pk)
			if err != nil {
				return err
			}
			req.PublisherKey = pk
			if manifestFile != "" {
				data, err := os.ReadFile(manifestFile)
				if err != nil {
					return fmt.Errorf("--manifest: %w", err)
				}
				m, err := manifest.Parse(data)
				if err != nil {
					return fmt.Errorf("--manifest %s: %w", manifestFile, err)
				}
				req.Manifest = m
			}
			if req.Manifest == nil && (req.Name == "" || req.Version == "") {
				// Learn the name and version now, to report what was published.
				m, err := manifest.Read(cmd.Context(), req.Binary, 0)
				if err != nil {
					return fmt.Errorf("publish %s: %w", req.Binary, err)
				}
				req.Name, req.Version = cmp.Or(req.Name, m.Name), cmp.Or(req.Version, m.Version)
			}
			if req.BaseURL != "" && !strings.HasPrefix(req.BaseURL, "https://") && !strings.HasPrefix(req.BaseURL, "http://") {
				return fmt.Errorf("--base-url %q: must be an http(s) URL", req.BaseURL)
			}
			ix, err := publish.Publish(cmd.Context(), dir, req, o)
			if err != nil {
				return fmt.Errorf("publish %s: %w", req.Binary, err)
			}
			a := publish.FindArtifact(ix, req)
			if a != nil {
				fmt.Fprintf(app.Out, "Published %s %s for %s (%d bytes, sha256 %s) at %s.\n", req.Name, req.Version, a.Platform(), a.Size, a.SHA256, a.URL)
			}
			printIndexLine(app, "Index", ix)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "publisher private key that signs the binary")
	sf.add(cmd, "root-key", "root private key that signs the index (default: --key)")
	cmd.Flags().StringVar(&req.Binary, "plugin", "", "the plugin binary")
	cmd.Flags().StringVar(&req.Name, "name", "", "plugin name (must match the binary's manifest; default: from it)")
	cmd.Flags().StringVar(&req.Version, "version", "", "version (must match the binary's manifest; default: from it)")
	cmd.Flags().StringVar(&req.OS, "os", "", "operating system the binary is built for (GOOS; default: this one)")
	cmd.Flags().StringVar(&req.Arch, "arch", "", "architecture the binary is built for (GOARCH; default: this one)")
	cmd.Flags().StringVar(&req.License, "license", "", "SPDX license expression (required for a new plugin)")
	cmd.Flags().StringVar(&req.Description, "description", "", "description (default: the manifest's)")
	cmd.Flags().StringVar(&req.Homepage, "homepage", "", "homepage URL")
	cmd.Flags().BoolVar(&req.Official, "official", false, "mark the plugin official (first-party)")
	cmd.Flags().StringVar(&req.Core, "core", "", "versions of palvella this version works with, e.g. \">=0.1.0\"")
	cmd.Flags().StringVar(&req.Advisory, "advisory", "", "notice shown to users installing this version")
	cmd.Flags().StringVar(&manifestFile, "manifest", "", "manifest JSON to use instead of running BINARY --describe (for other platforms)")
	cmd.Flags().StringVar(&req.BaseURL, "base-url", "", "serve the artifact from BASE_URL/NAME_OS_ARCH instead of the registry folder")
	cmd.Flags().DurationVar(&req.RootDelegation, "delegation-expires", 365*24*time.Hour, "when the key is both root and publisher: how long its delegation lasts")
	return cmd
}

func newRegistryYankCmd(app *App) *cobra.Command {
	var sf signingFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "yank DIR --key KEY NAME VERSION --reason R",
		Short: "Withdraw a published version",
		Long: `Mark a version yanked with a reason. Clients never pick a yanked version for
a range; an exact pin installs it only with 'plugin add --allow-yanked'.
Installed copies keep working. The binary stays in the registry so existing
locks can still be checked.`,
		Example: `  palvella registry yank ./acme --key root.key engine-acme 1.0.0 --reason "CVE-2026-1234: use 1.0.1"`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return errors.New("--reason is required: users who pinned the version see it")
			}
			o, err := sf.options("key")
			if err != nil {
				return err
			}
			ix, err := publish.Yank(args[0], args[1], args[2], reason, o)
			if err != nil {
				return fmt.Errorf("yank %s %s: %w", args[1], args[2], err)
			}
			printIndexLine(app, fmt.Sprintf("Yanked %s %s", args[1], args[2]), ix)
			return nil
		},
	}
	sf.add(cmd, "key", "root private key that signs the index")
	cmd.Flags().StringVar(&reason, "reason", "", "why the version is withdrawn and what to use instead")
	return cmd
}

func newRegistryResignCmd(app *App) *cobra.Command {
	var sf signingFlags
	cmd := &cobra.Command{
		Use:   "resign DIR --key KEY",
		Short: "Refresh the index's expiry (run it on a schedule)",
		Long: `Bump the index version, set a new expiry and re-sign it. Clients refuse an
expired index (so an attacker cannot freeze them on an old one); run this
more often than --expires.`,
		Example: `  palvella registry resign ./acme --key root.key --expires 720h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := sf.options("key")
			if err != nil {
				return err
			}
			ix, err := publish.Resign(args[0], o)
			if err != nil {
				return fmt.Errorf("re-sign %s: %w", args[0], err)
			}
			printIndexLine(app, "Re-signed", ix)
			return nil
		},
	}
	sf.add(cmd, "key", "root private key that signs the index")
	return cmd
}

func newRegistryDelegateCmd(app *App) *cobra.Command {
	var sf signingFlags
	var pubFile string
	var patterns []string
	var validity time.Duration
	var signsIndex bool
	cmd := &cobra.Command{
		Use:   "delegate DIR --key ROOTKEY --publisher PUB.pub --plugins PATTERN [--index]",
		Short: "Let a publisher key sign plugins whose names match a pattern",
		Long: `Delegate signing of plugins whose names match the patterns (path.Match
syntax, such as engine-* or action-acme) to a publisher's public key, for a
limited time. The root key signs the delegation. With --index the publisher
may also sign the index itself, so it publishes alone with
'palvella registry publish --key PUBLISHER.key' and the root key stays
offline (the delegation also records the root's public key in the index, so
the publisher's tool can check the index it signs); without it, the index is
signed by whoever holds the root key. Running it again for the same key
replaces its delegation (to widen, narrow or extend it). A revoked key is
never delegated again.`,
		Example: `  palvella registry delegate ./acme --key root.key --publisher team-ci.key.pub --plugins 'engine-*' --valid-for 2160h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pubFile == "" || len(patterns) == 0 {
				return errors.New("--publisher and --plugins are required: whose key, and which plugin names it may sign")
			}
			o, err := sf.options("key")
			if err != nil {
				return err
			}
			pub, err := sign.LoadPublicKey(pubFile)
			if err != nil {
				return fmt.Errorf("--publisher %s: %w", pubFile, err)
			}
			ix, err := publish.Delegate(args[0], publish.Delegation{PublicKey: pub, Plugins: patterns,
				Expires: time.Now().Add(validity).UTC().Truncate(time.Second), Index: signsIndex}, o)
			if err != nil {
				return fmt.Errorf("delegate to %s: %w", sign.KeyID(pub), err)
			}
			printIndexLine(app, fmt.Sprintf("Delegated %s to key %s", strings.Join(patterns, ","), sign.KeyID(pub)), ix)
			return nil
		},
	}
	sf.add(cmd, "key", "root private key that signs the delegation and the index")
	cmd.Flags().StringVar(&pubFile, "publisher", "", "the publisher's public key file (KEY.pub)")
	cmd.Flags().StringArrayVar(&patterns, "plugins", nil, "plugin name pattern the key may sign; repeatable")
	cmd.Flags().DurationVar(&validity, "valid-for", 90*24*time.Hour, "how long the delegation lasts")
	cmd.Flags().BoolVar(&signsIndex, "index", false, "let the key sign the index too, so it can publish with the root key offline")
	return cmd
}

func newRegistryServeCmd(app *App) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve DIR",
		Short: "Serve a registry folder over HTTP",
		Long: `Serve a registry folder: index.json (never cached, so clients always see
the newest) and the artifacts under it (cached as immutable). Nothing else in
the folder is served. Stops on Ctrl-C (SIGINT) or SIGTERM.

Put it behind a TLS-terminating proxy for use beyond loopback; signatures
protect integrity, TLS protects privacy.`,
		Example: `  palvella registry serve ./acme --listen 0.0.0.0:7710`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ix, err := publish.ReadIndex(args[0])
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			fmt.Fprintf(app.Out, "Serving registry %s (index version %d) from %s at http://%s/\n", ix.Name, ix.Version, args[0], ln.Addr())
			if err := server.Serve(cmd.Context(), args[0], ln); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("serve %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", defaultListen, "address to listen on")
	return cmd
}

// rootKeysFlag reads --root-key files, or returns the public registry's key.
func rootKeysFlag(files []string) ([]ed25519.PublicKey, error) {
	if len(files) == 0 {
		k, err := public.RootKey()
		if err != nil {
			return nil, err
		}
		return []ed25519.PublicKey{k}, nil
	}
	var keys []ed25519.PublicKey
	for _, f := range files {
		k, err := sign.LoadPublicKey(f)
		if err != nil {
			return nil, fmt.Errorf("--root-key %s: %w", f, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// verifyReport is the JSON form of a registry verification.
type verifyReport struct {
	Registry   string   `json:"registry"`
	Version    int64    `json:"version"`
	Expires    string   `json:"expires"`
	Plugins    int      `json:"plugins"`
	Artifacts  int      `json:"artifacts"`
	Downloaded bool     `json:"downloaded"`
	Problems   []string `json:"problems"`
	OK         bool     `json:"ok"`
}

func newRegistryVerifyCmd(app *App) *cobra.Command {
	var keyFiles []string
	var noDownload bool
	var output string
	cmd := &cobra.Command{
		Use:   "verify DIR|URL|FILE [--root-key PUBFILE]",
		Short: "Check a registry's signatures, expiry and artifacts",
		Long: `Check a registry as a client would: the index signature against the root
key, its expiry, every publisher delegation, every artifact signature, and
(unless --no-download) the size and sha256 of every artifact, downloading each.
Exits non-zero and lists every problem if anything is wrong.

Without --root-key the key of the public registry compiled into palvella is
used, so 'palvella registry verify registry.json' checks the public index.
--no-download checks everything but the artifact bytes: use it to review an
index whose artifacts are hosted elsewhere.`,
		Example: `  palvella registry verify ./acme --root-key root.pub
  palvella registry verify https://plugins.acme.example --root-key root.pub
  palvella registry verify registry.json --no-download`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			keys, err := rootKeysFlag(keyFiles)
			if err != nil {
				return err
			}
			httpc, err := app.registryHTTPClient()
			if err != nil {
				return err
			}
			rep, err := publish.Verify(cmd.Context(), args[0], publish.VerifyOptions{RootKeys: keys, SkipDownload: noDownload, HTTPClient: httpc})
			if rep == nil {
				return fmt.Errorf("verify %s: %w", args[0], err)
			}
			vr := verifyReport{Registry: rep.Registry, Version: rep.Version, Expires: rep.Expires, Plugins: rep.Plugins,
				Artifacts: rep.Artifacts, Downloaded: !noDownload, Problems: []string{}, OK: err == nil}
			for _, p := range rep.Problems {
				vr.Problems = append(vr.Problems, p.Error())
			}
			if output == "json" {
				if werr := writeJSON(app.Out, vr); werr != nil {
					return werr
				}
			} else {
				checked := "signatures, sizes and sha256 checked"
				if noDownload {
					checked = "signatures checked, artifacts not downloaded"
				}
				fmt.Fprintf(app.Out, "Registry %s, index version %d, valid until %s: %d plugins, %d artifacts (%s).\n",
					vr.Registry, vr.Version, vr.Expires, vr.Plugins, vr.Artifacts, checked)
				for _, p := range vr.Problems {
					fmt.Fprintf(app.Out, "  problem: %s\n", p)
				}
				if vr.OK {
					fmt.Fprintln(app.Out, "OK")
				}
			}
			if err != nil {
				return fmt.Errorf("verify %s: %d problem(s) found", args[0], max(len(rep.Problems), 1))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "root-key", nil, "root public key file to check against (default: the public registry's); repeatable")
	cmd.Flags().BoolVar(&noDownload, "no-download", false, "check signatures only; do not download artifacts")
	outputFlag(cmd, &output)
	return cmd
}

func newRegistryExportCmd(app *App) *cobra.Command {
	var keyFiles []string
	var out string
	cmd := &cobra.Command{
		Use:   "export DIR|URL|FILE --out bundle.tar.gz",
		Short: "Write a verified offline bundle of a registry",
		Long: `Verify a registry (as 'registry verify' does, downloading every artifact)
and write it as one tar.gz: the index byte for byte, signatures intact, and
every artifact. Carry it into a network without internet access and run
'palvella registry import' there. Without --root-key the public registry's
key is used.`,
		Example: `  palvella registry export https://plugins.acme.example --root-key root.pub --out acme.tar.gz`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required: the bundle file to write")
			}
			keys, err := rootKeysFlag(keyFiles)
			if err != nil {
				return err
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("--out %s already exists; choose another name or remove it", out)
			}
			httpc, err := app.registryHTTPClient()
			if err != nil {
				return err
			}
			rep, err := publish.ExportBundleFile(cmd.Context(), args[0], out, publish.VerifyOptions{RootKeys: keys, HTTPClient: httpc})
			if err != nil {
				return fmt.Errorf("export %s: %w", args[0], err)
			}
			fmt.Fprintf(app.Out, "Wrote %s: registry %s, index version %d (valid until %s), %d plugins, %d artifacts.\n",
				out, rep.Registry, rep.Version, rep.Expires, rep.Plugins, rep.Artifacts)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "root-key", nil, "root public key file (default: the public registry's); repeatable")
	cmd.Flags().StringVar(&out, "out", "", "bundle file to write")
	return cmd
}

func newRegistryImportCmd(app *App) *cobra.Command {
	var keyFiles []string
	var dir string
	cmd := &cobra.Command{
		Use:   "import bundle.tar.gz --dir DIR",
		Short: "Unpack and verify an offline bundle into a folder",
		Long: `Unpack a bundle written by 'registry export' into DIR (which must not
exist), refusing entries that would escape it, and verify it before it
appears. Then configure the folder as a registry with the same root key:
'palvella registry add NAME DIR --root-key ROOT.pub'. The index keeps its
expiry, so refresh the bundle before it expires.`,
		Example: `  palvella registry import acme.tar.gz --dir /srv/registries/acme --root-key root.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return errors.New("--dir is required: the folder to create")
			}
			keys, err := rootKeysFlag(keyFiles)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("import bundle: %w", err)
			}
			defer f.Close()
			rep, err := publish.ImportBundle(cmd.Context(), io.Reader(f), dir, publish.VerifyOptions{RootKeys: keys})
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			fmt.Fprintf(app.Out, "Imported registry %s, index version %d (valid until %s), %d plugins, %d artifacts into %s.\n",
				rep.Registry, rep.Version, rep.Expires, rep.Plugins, rep.Artifacts, dir)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "root-key", nil, "root public key file (default: the public registry's); repeatable")
	cmd.Flags().StringVar(&dir, "dir", "", "folder to create")
	return cmd
}

// errorKind names the sentinel of a registry refusal, for tables and JSON.
func errorKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{registry.ErrYanked, "yanked"}, {registry.ErrIncompatible, "incompatible"}, {registry.ErrPlatform, "no artifact for this platform"},
		{registry.ErrPolicy, "refused by policy"}, {registry.ErrSignature, "bad signature"}, {registry.ErrChecksum, "checksum mismatch"},
		{registry.ErrNotFound, "not found"}, {registry.ErrExpired, "expired"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "error"
}
