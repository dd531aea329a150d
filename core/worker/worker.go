// Package worker runs a remote worker (`palvella worker`): the action,
// job and engine plugins of this machine, and an orchestrator that leases
// jobs through a server over the worker protocol and runs them on those
// plugins. It never touches the database: see
// docs/design/remote-workers.md.
package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/version"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Config of a remote worker.
type Config struct {
	// Server is the server's URL, the one its API answers on
	// (http://host:port or https://host:port).
	Server string
	// Token is a token of the role worker.
	Token string
	// CACert is a PEM file of certificate authorities to trust for an
	// https:// server, besides the system's.
	CACert string
	// Name is the worker's name (default: the host's name).
	Name string
	// Labels are added to os, arch and platform.
	Labels map[string]string
	// Workers is how many jobs it runs at once (default 4).
	Workers int
	// Plugins are the plugins it may run; those of the action, job and
	// engine categories are hosted.
	Plugins []pluginhost.Spec
	// ShutdownGrace and PluginWait as for a server.
	ShutdownGrace time.Duration
	PluginWait    time.Duration
	Logger        hclog.Logger
	// Out receives the lines that tell a person what the worker does.
	Out io.Writer
}

// Run runs the worker until ctx ends; its running jobs then have the
// shutdown grace to finish, and are handed back to the server after it.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "palvella-worker", Output: os.Stderr, Level: hclog.Info})
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("the worker's name: give --name (the host's name is unknown: %w)", err)
		}
		cfg.Name = h
	}
	if cfg.Token == "" {
		return fmt.Errorf("no token: give --token (or PALVELLA_TOKEN) with a token of the role worker, made with `palvella token create NAME --role worker`")
	}
	conn, err := Dial(cfg.Server, cfg.Token, cfg.CACert)
	if err != nil {
		return err
	}
	defer conn.Close()

	host := &lateHost{}
	mgr, err := pluginhost.New(pluginhost.Options{Logger: cfg.Logger.Named("plugin"), Host: host})
	if err != nil {
		return err
	}
	defer mgr.Shutdown()
	for _, s := range cfg.Plugins {
		if !slices.ContainsFunc(s.Categories, runsJobs) || s.Broken != "" {
			continue
		}
		if _, err := mgr.Add(s); err != nil {
			return err
		}
	}
	o, err := orchestrator.NewWorker(orchestrator.Options{Plugins: mgr, Logger: cfg.Logger.Named("worker"), Workers: cfg.Workers,
		ShutdownGrace: cfg.ShutdownGrace, PluginWait: cfg.PluginWait},
		orchestrator.WorkerOptions{Conn: conn, Name: cfg.Name, Labels: cfg.Labels, Version: version.Version})
	if err != nil {
		return err
	}
	host.Host = o.Host()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := o.StartWorker(runCtx); err != nil {
		return fmt.Errorf("worker %s at %s: %w", cfg.Name, cfg.Server, err)
	}
	fmt.Fprintf(cfg.Out, "Worker %s leases jobs from %s with labels %v\n", cfg.Name, cfg.Server, o.Labels())
	cfg.Logger.Info("worker started", "name", cfg.Name, "server", cfg.Server, "labels", o.Labels())
	<-ctx.Done()
	stop()
	o.Wait()
	cfg.Logger.Info("worker stopped")
	return nil
}

// runsJobs: the categories of plugins a worker hosts.
func runsJobs(c sdk.Category) bool {
	return c == sdk.CategoryAction || c == sdk.CategoryJob || c == sdk.CategoryEngine
}

// Dial connects to a server's worker service: TLS for https://, with the
// certificate authorities of caFile besides the system's; plain h2c for
// http://, where the token would travel in the clear, which only a
// loopback server is allowed.
func Dial(server, token, caFile string) (*grpc.ClientConn, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want the server's URL, http://host:port or https://host:port", server)
	}
	target := u.Host
	var creds credentials.TransportCredentials
	secure := false
	switch u.Scheme {
	case "https":
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("--ca-cert: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ca-cert: %s holds no PEM certificate", caFile)
			}
		}
		if u.Port() == "" {
			target = net.JoinHostPort(u.Hostname(), "443")
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: u.Hostname()})
		secure = true
	case "http":
		if !loopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("--server %s: a worker's token and its jobs' credentials would cross the network in the clear; serve the API over HTTPS (palvella server --tls-cert, --tls-key) and give https://", server)
		}
		if u.Port() == "" {
			target = net.JoinHostPort(u.Hostname(), "80")
		}
		creds = insecure.NewCredentials()
	default:
		return nil, fmt.Errorf("--server %q: the scheme is http or https", server)
	}
	return grpc.NewClient(target, grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(bearer{token: token, secure: secure}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(8<<20), grpc.MaxCallSendMsgSize(8<<20)))
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// bearer sends the worker's token with every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// lateHost lets the plugin host start before the orchestrator that serves
// its plugins' host services.
type lateHost struct{ sdk.Host }
