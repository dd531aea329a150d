package main

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/worker"
	"github.com/spf13/cobra"
)

func newWorkerCmd(app *App) *cobra.Command {
	var r remote
	var cfg worker.Config
	var labels []string
	var logFormat, configPath string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker that leases jobs from a server and runs them on this machine",
		Long: `Run a remote worker: it leases jobs through the server at --server (the URL of
its API) and runs them on this machine's action, job and engine plugins (the
builtins and those installed here with palvella plugin add, configured by the
plugins: section of --config). It never touches
the database; the server marks each job running for it, gives it the job's
credentials, and records what it reports.

Its token is one of the role worker (palvella token create NAME --role worker),
which may lease and report and nothing else. Beyond loopback the server must
serve HTTPS (palvella server --tls-cert, --tls-key); --ca-cert names the
authority that signed its certificate when the system does not trust it.

The worker offers the labels os, arch and platform of this machine and those of
--label; a job runs on it when its runs_on names only labels it has, with their
values. A worker that cannot renew a job's lease for half the lease (the server
is unreachable) stops the job before another worker may take it. On SIGTERM it
leases nothing more, lets its jobs finish for --shutdown-grace, then hands the
rest back to run again elsewhere.

palvella worker list and palvella worker drain NAME manage workers through the
API, with an operator's or an admin's token. See docs/scale-out.md.`,
		Example: `  palvella worker --server https://ci.example.com:7700 --token "$WORKER_TOKEN" --label gpu=true
  palvella worker list
  palvella worker drain gpu-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			cfg.Server = firstOf(r.server, os.Getenv("PALVELLA_SERVER"), DefaultServer)
			cfg.Token = firstOf(r.token, os.Getenv("PALVELLA_TOKEN"))
			cfg.CACert = firstOf(r.caCert, os.Getenv(CACertEnv))
			// The plugins of this machine with their defaults under
			// PALVELLA_HOME (the local engine's workspaces) and what the
			// configuration file's plugins: section gives them.
			file, err := loadServerConfig(app.Home, configPath)
			if err != nil {
				return err
			}
			if cfg.Plugins, _, _, err = app.serverPlugins(file); err != nil {
				return err
			}
			level := hclog.LevelFromString(app.LogLevel)
			if !cmd.Flags().Changed("log-level") {
				level = hclog.Info
			}
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "palvella-worker", Output: app.Err, Level: level,
				JSONFormat: logFormat == "json" || (logFormat == "auto" && !isTerminal(app.Err))})
			cfg.Out = app.Out
			return worker.Run(cmd.Context(), cfg)
		},
	}
	remoteFlags(cmd, &r)
	cmd.AddCommand(newWorkerListCmd(app, &r), newWorkerDrainCmd(app, &r))
	cmd.Flags().StringVar(&cfg.Name, "name", "", "the worker's name, as palvella worker list shows it and drain names it (default: the host's name)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "a label k=v the worker offers to runs_on, besides os, arch and platform (repeat for several)")
	cmd.Flags().IntVar(&cfg.Workers, "workers", 4, "jobs the worker runs at once")
	cmd.Flags().DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 30*time.Second, "on SIGTERM or Ctrl-C, how long running jobs may go on before they are stopped and handed back to run again")
	cmd.Flags().DurationVar(&cfg.PluginWait, "plugin-wait", 60*time.Second, "how long a job waits for a plugin it needs to start before it fails naming the plugin")
	cmd.Flags().StringVar(&configPath, "config", "", "a configuration file whose plugins: section configures this machine's plugins (env PALVELLA_CONFIG; default $PALVELLA_HOME/palvella.yaml when it exists); its database, storage, engines and server settings are the server's business and not read")
	cmd.Flags().StringVar(&logFormat, "log-format", "auto", "log format on stderr: auto (JSON unless a terminal), json or text")
	return cmd
}

// labelKey and labelValue are what runs_on accepts (docs/pipeline.schema.json).
var (
	labelKey   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._/-]{0,62}[a-z0-9])?$`)
	labelValue = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
)

// parseLabels reads --label k=v values.
func parseLabels(in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range in {
		k, v, ok := strings.Cut(l, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("--label %q: want k=v", l)
		case !labelKey.MatchString(k):
			return nil, fmt.Errorf("--label %q: a label's name is lowercase letters, digits, '.', '_', '/' and '-', starting and ending with a letter or digit", l)
		case !labelValue.MatchString(v):
			return nil, fmt.Errorf("--label %q: a label's value is 1 to 63 letters, digits, '.', '_' and '-'", l)
		}
		out[k] = v
	}
	return out, nil
}

// workerLost is how long after its last heartbeat a worker is shown as
// lost: three heartbeats missed.
const workerLost = 15 * time.Second

// workerState is what `worker list` says of a worker.
func workerState(w *resource.Worker, now time.Time) string {
	age := now.Sub(w.Status.LastHeartbeat)
	switch {
	case age > workerLost && len(w.Status.Jobs) == 0 && w.Spec.Drain:
		return "drained, gone"
	case age > workerLost:
		return "lost"
	case w.Spec.Drain && len(w.Status.Jobs) == 0:
		return "drained"
	case w.Spec.Drain:
		return "draining"
	}
	return "ready"
}

func newWorkerListCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the remote workers: labels, running jobs, last heartbeat",
		Long: `List the remote workers the servers heard of, with their state (ready,
draining, drained, or lost once no heartbeat came for 15 s), the jobs they run
of their capacity, their labels and how long ago their last heartbeat came.
A worker that stopped stays listed, its heartbeat ageing. -o json gives every
field.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			ws, err := c.Workers(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, ws)
			}
			now := time.Now()
			t := newTable(app.Out, "NAME", "STATE", "JOBS", "LABELS", "HEARTBEAT", "VERSION")
			for i := range ws {
				w := &ws[i]
				var labels []string
				for _, k := range slices.Sorted(maps.Keys(w.Status.Labels)) {
					labels = append(labels, k+"="+w.Status.Labels[k])
				}
				jobs := strconv.Itoa(len(w.Status.Jobs)) + "/" + strconv.Itoa(w.Status.Capacity)
				if len(w.Status.Jobs) > 0 {
					jobs += " " + strings.Join(w.Status.Jobs, ",")
				}
				t.row(w.Name, workerState(w, now), jobs, orDash(strings.Join(labels, ",")),
					now.Sub(w.Status.LastHeartbeat).Round(time.Second).String()+" ago", orDash(w.Status.Version))
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func newWorkerDrainCmd(app *App, r *remote) *cobra.Command {
	var undo bool
	cmd := &cobra.Command{
		Use:   "drain NAME",
		Short: "Drain a worker: it finishes its running jobs and leases no more",
		Long: `Drain a remote worker: the servers lease it no new job (it hears so within
its next lease or heartbeat, 5 s at most) and the jobs it runs go on to their
end; palvella worker list shows it draining, then drained. The worker keeps
running: stop it once drained, or undo with --undo. Needs write on worker:NAME
(admin or operator).`,
		Example: `  palvella worker drain gpu-1
  palvella worker drain gpu-1 --undo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			w, err := c.DrainWorker(cmd.Context(), args[0], !undo)
			if err != nil {
				return remoteError(err)
			}
			if undo {
				fmt.Fprintf(app.Out, "Worker %s leases jobs again.\n", w.Name)
				return nil
			}
			fmt.Fprintf(app.Out, "Worker %s is drained: it finishes its %d running jobs and leases no more.\n", w.Name, len(w.Status.Jobs))
			return nil
		},
	}
	cmd.Flags().BoolVar(&undo, "undo", false, "let the worker lease jobs again")
	return cmd
}
