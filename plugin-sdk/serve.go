package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// DescribeFlag makes a plugin binary print its manifest as JSON and exit,
// without the handshake. Registries and `palvella plugin describe` use it.
const DescribeFlag = "--describe"

// ServeOption changes how Serve runs.
type ServeOption func(*serveConfig)

type serveConfig struct {
	args   []string
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	exit   func(int)
	logger hclog.Logger
	// hostIdle and hostTimeout: see WithHostKeepalive.
	hostIdle, hostTimeout time.Duration
}

// WithHostKeepalive makes the plugin ping its host over the connection
// after idle without traffic, and close the connection when the host
// does not answer within timeout: every call in flight is then
// cancelled. An engine serves with it so that a job's commands do not
// outlive a host that froze (stopped with SIGSTOP, a paused machine):
// such a host cannot renew the job's lease, and once the lease expires
// another worker may run the job. The engine stops the commands well
// within the lease instead (docs/design/remote-workers.md).
func WithHostKeepalive(idle, timeout time.Duration) ServeOption {
	return func(c *serveConfig) { c.hostIdle, c.hostTimeout = idle, timeout }
}

// WithArgs makes Serve read args instead of os.Args[1:]. Builtin plugins
// compiled into another binary use it.
func WithArgs(args []string) ServeOption { return func(c *serveConfig) { c.args = args } }

// WithLogger sets the logger go-plugin uses in the plugin process.
func WithLogger(l hclog.Logger) ServeOption { return func(c *serveConfig) { c.logger = l } }

// Logger returns a logger whose lines the Palvella core receives, parses and
// writes into its own log under the plugin's name. Plugins log through it
// (or through Host.Log); stdout belongs to the handshake.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: os.Stderr, JSONFormat: true, Level: hclog.Trace})
}

// Serve runs a plugin: it answers `--describe`, checks that the process
// was started by Palvella, and serves the base service and the given
// category services over gRPC until the core stops it. Serve does not
// return; the process exits when serving ends.
func Serve(p Plugin, services ...Service) {
	os.Exit(serve(p, services))
}

// ServeWith is Serve with options; it returns the exit code instead of
// exiting, so a binary that hosts several plugins can choose.
func ServeWith(p Plugin, services []Service, opts ...ServeOption) int {
	return serve(p, services, opts...)
}

func serve(p Plugin, services []Service, opts ...ServeOption) int {
	cfg := serveConfig{args: os.Args[1:], stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	for _, o := range opts {
		o(&cfg)
	}
	normalize := manifestNormalizer(services)

	if slices.Contains(cfg.args, DescribeFlag) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m, err := p.Describe(ctx)
		if err != nil {
			fmt.Fprintf(cfg.stderr, "describe: %v\n", err)
			return 1
		}
		normalize(m)
		enc := json.NewEncoder(cfg.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			fmt.Fprintf(cfg.stderr, "describe: %v\n", err)
			return 1
		}
		return 0
	}

	if cfg.getenv(MagicCookieKey) != MagicCookieValue {
		fmt.Fprintf(cfg.stderr, "This program is a Palvella plugin. It is started by Palvella, not by hand.\n"+
			"To see what it provides: %s %s\n"+
			"To use it: palvella plugin add <path-to-this-binary> --allow-unsigned\n", os.Args[0], DescribeFlag)
		return 1
	}

	set := goplugin.PluginSet{BasePluginName: &BasePlugin{Impl: p, normalize: normalize}}
	for _, s := range services {
		set[s.Category.String()] = s.Plugin
	}
	versioned := map[int]goplugin.PluginSet{}
	for _, v := range ProtocolVersions {
		versioned[v] = set
	}
	logger := cfg.logger
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Output: cfg.stderr, JSONFormat: true, Level: hclog.Info})
	}
	sc := &goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versioned,
		GRPCServer:       goplugin.DefaultGRPCServer,
		Logger:           logger,
	}
	if cfg.hostIdle > 0 {
		params := keepalive.ServerParameters{Time: cfg.hostIdle, Timeout: cfg.hostTimeout}
		sc.GRPCServer = func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.KeepaliveParams(params))...)
		}
	}
	if pem := cfg.getenv("PLUGIN_CLIENT_CERT"); pem != "" {
		// AutoMTLS with a P-256 certificate (mtls.go).
		if err := autoMTLS(sc, pem); err != nil {
			logger.Warn("serving with go-plugin's own certificate", "error", err)
		}
	}
	goplugin.Serve(sc)
	return 0
}

// manifestNormalizer fills in the categories and protocol versions that
// Serve knows, so a plugin's Describe need not repeat them.
func manifestNormalizer(services []Service) func(*Manifest) {
	cats := make([]Category, len(services))
	for i, s := range services {
		cats[i] = s.Category
	}
	return func(m *Manifest) { CompleteManifest(m, cats...) }
}

// CompleteManifest does to m what Serve does to every manifest a plugin
// returns: an empty Categories becomes the categories the plugin serves,
// and an empty ProtocolVersions the versions this SDK speaks.
func CompleteManifest(m *Manifest, served ...Category) {
	if len(m.Categories) == 0 {
		m.Categories = slices.Clone(served)
	}
	if len(m.ProtocolVersions) == 0 {
		m.ProtocolVersions = slices.Clone(ProtocolVersions)
	}
}

// NewBasePlugin returns the base service's plugin for impl, completing its
// manifest as Serve does for the given services. Test harnesses that serve
// a plugin without Serve use it.
func NewBasePlugin(impl Plugin, services ...Service) *BasePlugin {
	return &BasePlugin{Impl: impl, normalize: manifestNormalizer(services)}
}
