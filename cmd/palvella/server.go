package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only when PALVELLA_PPROF names an address
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/server"
	"github.com/spf13/cobra"
)

func newServerCmd(app *App) *cobra.Command {
	var cfg server.Config
	var logFormat, configPath string
	var checkConfig bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Palvella server: API, scheduler and an embedded worker",
		Long: `Run the Palvella server. With no flags it runs on this machine with no set-up:
it listens on 127.0.0.1:7700, keeps its data under PALVELLA_HOME (default
~/.palvella) in sqlite and on the filesystem, runs jobs with the local engine in
an embedded worker, and writes a management token for the CLI on this machine
into $PALVELLA_HOME/cli.json (mode 0600), so that the other commands simply work.

Every API route but /api/v1/health needs a token. A server listening on an
address other than loopback never writes the CLI's token file.

Configuration: $PALVELLA_HOME/palvella.yaml when it exists, or the file
--config (or PALVELLA_CONFIG) names, chooses the plugin of each category
(database, storage, credential, authentication, authorization), configures
plugins, defines named engines with setup and teardown actions, and sets
any of the flags below under server: (--shutdown-grace is shutdown_grace).
A flag given on the command line wins over its PALVELLA_* variable
(PALVELLA_SHUTDOWN_GRACE), which wins over the file. See docs/server.md.`,
		Example: `  palvella server
  palvella server --listen 127.0.0.1:8080 --workers 8
  palvella server --config /etc/palvella/palvella.yaml --check-config
  PALVELLA_WORKERS=8 palvella server`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := app.configureServer(cmd, &cfg, configPath)
			if err != nil {
				return err
			}
			if checkConfig {
				printConfig(app.Out, file, &cfg)
				return nil
			}
			cfg.Out = app.Out
			level := hclog.LevelFromString(app.LogLevel)
			if !cmd.Flags().Changed("log-level") {
				level = hclog.Info
			}
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "palvella", Output: app.Err, Level: level,
				JSONFormat: logFormat == "json" || (logFormat == "auto" && !isTerminal(app.Err))})
			if addr := os.Getenv("PALVELLA_PPROF"); addr != "" {
				startPprof(addr, cfg.Logger)
			}
			// Plugins added, upgraded or removed while it runs apply live:
			// the server re-reads them as it read them now (plugin_live.go).
			cfg.ReloadPlugins = func() ([]pluginhost.Spec, error) {
				specs, _, _, err := app.serverPlugins(file)
				return specs, err
			}
			cfg.CollectPlugins = app.collectPlugins(cfg.Logger.Named("plugin").Info)
			cfg.Registries = app.serverRegistries
			for _, s := range cfg.Plugins {
				if s.Broken != "" {
					// Hosted as failed with the reason (GET /api/v1/plugins);
					// the other plugins and the server go on.
					cfg.Logger.Named("plugin").Error("plugin is broken and is not launched", "plugin", s.Name, "reason", s.Broken,
						"fix", "palvella plugin remove "+s.Name)
				}
			}
			return server.Run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the server's configuration file (env PALVELLA_CONFIG; default $PALVELLA_HOME/palvella.yaml when it exists)")
	cmd.Flags().BoolVar(&checkConfig, "check-config", false, "read the configuration with the flags and PALVELLA_* variables, say what it selects, and exit: 0 when it is valid (it runs no plugin: a plugin's configuration is checked against its schema when it launches, and named engines' types and parameters when the server starts)")
	for _, c := range config.Singletons {
		cmd.Flags().String(c.String(), "", fmt.Sprintf("the %s plugin (builtin or installed), over the configuration file's %s.plugin; default: the builtin one", c, c))
	}
	cmd.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:7700", "address of the API")
	cmd.Flags().IntVar(&cfg.Workers, "workers", 4, "jobs the embedded worker runs at once")
	cmd.Flags().BoolVar(&cfg.NoWorker, "no-worker", false, "run no embedded worker")
	cmd.Flags().DurationVar(&cfg.DefaultRunTimeout, "default-run-timeout", 24*time.Hour, "timeout of runs whose pipeline sets none")
	cmd.Flags().DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 30*time.Second, "on SIGTERM or Ctrl-C, how long running jobs may go on before they are stopped and handed back to run again after the restart")
	cmd.Flags().DurationVar(&cfg.PluginWait, "plugin-wait", 60*time.Second, "how long a job waits for a plugin it needs to start or restart before it fails naming the plugin")
	cmd.Flags().DurationVar(&cfg.LeaseTTL, "lease-ttl", 10*time.Second, "how long a worker holds a job between renewals; a job whose lease cannot be renewed for half of it is stopped, and one whose worker died runs again after it")
	cmd.Flags().IntVar(&cfg.MaxQueuedRuns, "max-queued-runs", 1000, "runs that may be unfinished at once; more are refused with 429 and Retry-After (negative: no limit)")
	cmd.Flags().Int64Var(&cfg.MaxLogBytes, "max-log-bytes", orchestrator.DefaultMaxLogBytes, "bytes of one action's log kept in storage; past them the action goes on and its log ends with a line saying how much was not stored (negative: no limit)")
	cmd.Flags().StringVar(&cfg.SecretKeyFile, "secret-key-file", "", "file holding the key credentials are encrypted under (env PALVELLA_SECRET_KEY_FILE; or PALVELLA_SECRET_KEY holds the key); required beyond loopback")
	cmd.Flags().StringVar(&cfg.TLSCert, "tls-cert", "", "serve the API over HTTPS with this certificate (PEM)")
	cmd.Flags().StringVar(&cfg.TLSKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	cmd.Flags().DurationVar(&cfg.HTTP.ReadHeader, "read-header-timeout", server.DefaultReadHeaderTimeout, "longest a client may take to send a request's headers (API and webhooks)")
	cmd.Flags().DurationVar(&cfg.HTTP.Read, "read-timeout", server.DefaultReadTimeout, "longest a client may take to send a whole request, body included (log and event streams are not cut by it)")
	cmd.Flags().DurationVar(&cfg.HTTP.Idle, "idle-timeout", server.DefaultIdleTimeout, "longest a kept-alive connection waits for its next request")
	cmd.Flags().StringVar(&logFormat, "log-format", "auto", "log format on stderr: auto (JSON unless a terminal), json or text")
	cmd.Flags().StringVar(&cfg.Triggers.WebhookListen, "webhook-listen", "", "address of the webhook listener (/hooks/...), separate from the API (default 127.0.0.1:7701, skipped with a warning when taken); \"off\" serves none")
	cmd.Flags().Int64Var(&cfg.Triggers.MaxWebhookBody, "webhook-max-body", 1<<20, "largest webhook body accepted, in bytes")
	cmd.Flags().DurationVar(&cfg.Triggers.MinInterval, "min-interval", time.Minute, "shortest interval trigger a pipeline may declare")
	cmd.Flags().DurationVar(&cfg.Triggers.RecordRetention, "trigger-record-retention", 30*24*time.Hour, "how long trigger records are kept, and a webhook delivery ID is refused as a replay (negative: for ever)")
	cmd.Flags().IntVar(&cfg.Triggers.MaxRecordsPerPipeline, "trigger-records-per-pipeline", 1000, "most trigger records kept per pipeline, besides accepted webhook deliveries (negative: no limit)")
	return cmd
}

// startPprof serves Go's profiler on addr (PALVELLA_PPROF), for diagnosing
// the server's own performance. Keep addr on loopback.
func startPprof(addr string, log hclog.Logger) {
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Error("pprof", "error", err)
		}
	}()
}
