// Package server wires a Palvella server together: the plugin host with the
// configured plugins, the orchestrator with its embedded worker, the HTTP
// API, and the local CLI's credentials.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/metrics"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/ui"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Config of a server. Zero values take the defaults.
type Config struct {
	// Home is the data directory (PALVELLA_HOME).
	Home string
	// Listen is the API's address (default 127.0.0.1:7700).
	Listen string
	// ReloadPlugins, when set, re-reads the plugins to host (what Plugins
	// was at start) when an admin asks the API to (POST
	// /api/v1/plugins/reload, as `palvella plugin add`, `upgrade` and
	// `remove` do): the changes apply live (reload.go).
	ReloadPlugins func() ([]pluginhost.Spec, error)
	// Registries, when set, lists the plugin registries of the home, for
	// GET /api/v1/registries (registries.go).
	Registries func(context.Context) ([]api.Registry, error)
	// CollectPlugins, when set, is called at start, after each reload and
	// each time a replaced plugin version stopped, with every binary the
	// server may still run; it deletes installed versions not among them.
	CollectPlugins func(inUse []string)
	// Plugins are the plugins to host: builtins and installed ones, each
	// with its configuration.
	Plugins []pluginhost.Spec
	// Choices name the plugin of each single-instance category (database,
	// storage, credential, authentication, authorization). A category not
	// chosen takes the one plugin among Plugins that declares it; two make
	// an error that asks for a choice.
	Choices map[sdk.Category]string
	// SecretKeyPlugin is the plugin given the key credentials are
	// encrypted under (as key or key_file in its configuration), when it
	// is the credential plugin; empty for none.
	SecretKeyPlugin string
	// Engines are the named engines, and DefaultEngine the one jobs run
	// on when their pipeline names none (orchestrator.Options).
	Engines       []orchestrator.Engine
	DefaultEngine string
	// ConfigFile, when the configuration came from a file, places the
	// problems found once plugins run (an engine's parameters that its
	// type refuses) on the file's lines.
	ConfigFile *config.File
	// Workers is how many jobs the embedded worker runs at once; NoWorker
	// runs none.
	Workers  int
	NoWorker bool
	// DefaultRunTimeout ends runs whose pipeline sets no timeout (default
	// 24h), so that no run is left running forever.
	DefaultRunTimeout time.Duration
	// ShutdownGrace is how long running jobs may go on once the server is
	// asked to stop (default 30s); then they are handed back to the queue.
	ShutdownGrace time.Duration
	// PluginWait bounds how long a job waits for a plugin to start.
	PluginWait time.Duration
	// MaxQueuedRuns bounds the runs unfinished at once (default 1000).
	MaxQueuedRuns int
	// LeaseTTL is how long a worker holds a job between renewals.
	LeaseTTL time.Duration
	Logger   hclog.Logger
	// Out receives the lines that tell a person where the server listens.
	Out io.Writer
	// Ready, if set, is called with the API's URL once the server serves.
	Ready func(url string)
	// SecretKeyFile holds the key credentials are encrypted under (base64
	// of 32 bytes). Without it, PALVELLA_SECRET_KEY; without that, a
	// loopback server generates $PALVELLA_HOME/secret.key and any other
	// refuses to start.
	SecretKeyFile string
	// TLSCert and TLSKey, both or neither, serve the API over HTTPS.
	TLSCert, TLSKey string
	// HTTP bounds the connections of the API and the webhook listener
	// (hygiene.go).
	HTTP HTTPTimeouts
	// Triggers configure webhooks and schedules (see webhook.go).
	Triggers TriggerConfig
	// MaxLogBytes bounds the stored log of one action (default 100 MiB;
	// negative keeps everything).
	MaxLogBytes int64
}

// CLIConfig is the file a local server writes for the CLI on the same
// machine ($PALVELLA_HOME/cli.json, mode 0600).
type CLIConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// CLIConfigFile is the CLI configuration's file name under the home.
const CLIConfigFile = "cli.json"

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:7700"
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "palvella", Output: os.Stderr, Level: hclog.Info})
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if err := hardenProcess(); err != nil {
		cfg.Logger.Warn("could not make the server's process non-dumpable; jobs running as its user may read its memory", "error", err)
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", cfg.Home, err)
	}
	for _, n := range tightenHome(cfg.Home, cfg.Logger) {
		fmt.Fprintln(cfg.Out, n)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	loopback := isLoopback(ln.Addr())
	scheme := "http"
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return fmt.Errorf("give both --tls-cert and --tls-key, or neither")
	}
	if cfg.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("load the TLS certificate: %w", err)
		}
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	choices, err := choosePlugins(cfg.Plugins, cfg.Choices)
	if err != nil {
		return err
	}
	if cfg.SecretKeyPlugin != choices[sdk.CategoryCredential] {
		cfg.SecretKeyPlugin = ""
	}
	keyConfig, keyNote, err := credentialKey(cfg, loopback, ln.Addr().String())
	if err != nil {
		return err
	}

	live := &livePlugins{cfg: &cfg, keyConfig: keyConfig, chosen: choices, log: cfg.Logger.Named("plugin")}
	host := &lateHost{}
	// Metrics exist before the plugin host, which reports each plugin call.
	var mtrs atomic.Pointer[metrics.Metrics]
	mgr, err := pluginhost.New(pluginhost.Options{Logger: cfg.Logger.Named("plugin"), Host: host, OnDrained: live.drained,
		OnCall: func(plugin, method string, d time.Duration, err error) {
			mtrs.Load().ObservePluginCall(plugin, method, d, err)
		}})
	if err != nil {
		return err
	}
	defer mgr.Shutdown()
	live.mgr = mgr
	// Plugins whose configuration names credentials are added once the
	// others (the credential plugin among them) are there to read them.
	var later []pluginhost.Spec
	for _, spec := range cfg.Plugins {
		spec.Config = maps.Clone(spec.Config)
		if spec.Name == cfg.SecretKeyPlugin {
			if spec.Config == nil {
				spec.Config = map[string]any{}
			}
			maps.Copy(spec.Config, keyConfig)
		}
		if namesCredentials(spec.Config) {
			later = append(later, spec)
			continue
		}
		if _, err := mgr.Add(spec); err != nil {
			return err
		}
	}
	if err := addResolved(ctx, mgr, choices, later); err != nil {
		return err
	}
	live.collect() // versions left by a change made while no server ran
	// The management token: on loopback the server hands it to the local
	// CLI in a file only the user can read (management.go).
	tokenNote := ""
	if loopback {
		if tokenNote, err = ensureManagementToken(ctx, mgr, choices[sdk.CategoryAuthentication], cfg.Home, url); err != nil {
			return err
		}
	}
	bus, mtr := &events.Bus{}, newMetrics(mgr)
	mtrs.Store(mtr)
	orch, err := orchestrator.New(orchestrator.Options{Plugins: mgr, Logger: cfg.Logger.Named("orchestrator"), Workers: cfg.Workers, NoWorker: cfg.NoWorker,
		Database: choices[sdk.CategoryDatabase], Storage: choices[sdk.CategoryStorage], Credential: choices[sdk.CategoryCredential],
		Authentication: choices[sdk.CategoryAuthentication], Engines: cfg.Engines, DefaultEngine: cfg.DefaultEngine,
		Events: bus, Metrics: mtr, MinInterval: cfg.Triggers.MinInterval, DefaultRunTimeout: cfg.DefaultRunTimeout,
		ShutdownGrace: cfg.ShutdownGrace, PluginWait: cfg.PluginWait, MaxQueuedRuns: cfg.MaxQueuedRuns, LeaseTTL: cfg.LeaseTTL,
		MaxLogBytes: cfg.MaxLogBytes})
	if err != nil {
		return err
	}
	host.set(orch.Host())
	if len(cfg.Engines) > 0 {
		if err := checkEngines(ctx, orch, cfg.ConfigFile); err != nil {
			return err
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := orch.Start(runCtx); err != nil {
		return err
	}
	orch.WatchEvents(runCtx)
	stopTriggers, err := startTriggers(runCtx, cfg, choices, mgr, orch, bus, mtr)
	if err != nil {
		return err
	}
	defer stopTriggers()
	authorizer := scoped{next: &authz{mgr: mgr, plugin: choices[sdk.CategoryAuthorization], log: cfg.Logger.Named("authz")}}
	sec := &security{mgr: mgr, choices: choices, authz: authorizer, managed: loopback, home: cfg.Home, url: url, now: time.Now}
	an := &authn{mgr: mgr, plugin: choices[sdk.CategoryAuthentication], throttle: newThrottle()}
	workers := workerServer(orch, an, authorizer)
	workerMetrics(orch, mtr)
	defer workers.Stop()
	handler := withRemote(withWorkers(workers, ui.Handler(api.New(reloadable{backend{orch, sec}, live}, an, authorizer, api.Options{}))))
	srv := cfg.HTTP.apply(&http.Server{Handler: handler})
	serveHTTP2(srv)
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()

	fmt.Fprintf(cfg.Out, "Palvella is listening on %s\n", url)
	fmt.Fprintf(cfg.Out, "Data: %s\n", cfg.Home)
	if keyNote != "" {
		fmt.Fprintln(cfg.Out, keyNote)
	}
	if tokenNote != "" {
		fmt.Fprintln(cfg.Out, tokenNote)
		cfg.Logger.Info(tokenNote)
	}
	if loopback {
		fmt.Fprintf(cfg.Out, "The CLI on this machine is set up: its token is in %s\n", filepath.Join(cfg.Home, CLIConfigFile))
	} else {
		fmt.Fprintf(cfg.Out, "No token is written on a server that listens beyond loopback: the first one comes from `palvella token bootstrap --server %s`\n", url)
	}
	if cfg.Ready != nil {
		cfg.Ready(url)
	}
	cfg.Logger.Info("server started", "url", url, "home", cfg.Home)

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	// Stop leasing and firing triggers first: running jobs go on for the
	// shutdown grace (then are handed back), while the API closes.
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx) // closes listeners; in-flight requests get 10s
	orch.Wait()
	cfg.Logger.Info("server stopped")
	return nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// lateHost lets plugins be created before the orchestrator that serves
// their host services.
type lateHost struct{ sdk.Host }

func (h *lateHost) set(x sdk.Host) { h.Host = x }
