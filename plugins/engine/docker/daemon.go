package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugins/engine/internal/ownerlock"
	"golang.org/x/net/http/httpproxy"
)

// daemon is a connection to one Docker daemon.
type daemon struct {
	c        *client.Client
	endpoint string
}

// endpoint is where a daemon is and how to reach it.
type endpoint struct {
	host   string
	tlsDir string // holds ca.pem, cert.pem and key.pem, or empty
	proxy  httpproxy.Config
}

func (e endpoint) key() string {
	return strings.Join([]string{e.host, e.tlsDir, e.proxy.HTTPProxy, e.proxy.HTTPSProxy, e.proxy.NoProxy}, "\x00")
}

// resolveEndpoint finds the daemon of a job's parameters: host, else the
// context's endpoint, else DOCKER_HOST, else the default socket.
func (p *Plugin) resolveEndpoint(pr params) (endpoint, error) {
	e := endpoint{proxy: httpproxy.Config{HTTPProxy: pr.httpProxy, HTTPSProxy: pr.httpsProxy, NoProxy: pr.noProxy}}
	switch {
	case pr.host != "":
		e.host = pr.host
	case pr.context != "" && pr.context != "default":
		host, tlsDir, err := readContext(p.config().dockerConfig, pr.context)
		if err != nil {
			return e, err
		}
		e.host, e.tlsDir = host, tlsDir
	case os.Getenv("DOCKER_HOST") != "":
		e.host = os.Getenv("DOCKER_HOST")
	default:
		e.host = "unix:///var/run/docker.sock"
	}
	return e, nil
}

// readContext reads a Docker context's endpoint from the Docker CLI's
// context store: contexts/meta/<sha256 of the name>/meta.json, with its
// TLS files under contexts/tls/<same>/docker.
func readContext(dir, name string) (host, tlsDir string, err error) {
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	b, err := os.ReadFile(filepath.Join(dir, "contexts", "meta", id, "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", "", sdk.Errorf(sdk.ErrInvalidArgument, "context", "no Docker context named %q in %s (see `docker context ls`)", name, dir)
	}
	if err != nil {
		return "", "", fmt.Errorf("read Docker context %q: %w", name, err)
	}
	var meta struct {
		Endpoints map[string]struct {
			Host string `json:"Host"`
		} `json:"Endpoints"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", "", fmt.Errorf("read Docker context %q: %w", name, err)
	}
	host = meta.Endpoints["docker"].Host
	if host == "" {
		return "", "", sdk.Errorf(sdk.ErrInvalidArgument, "context", "Docker context %q has no docker endpoint", name)
	}
	t := filepath.Join(dir, "contexts", "tls", id, "docker")
	if _, err := os.Stat(filepath.Join(t, "ca.pem")); err == nil {
		tlsDir = t
	}
	return host, tlsDir, nil
}

// daemonFor returns the connection to the daemon of a job's parameters,
// opening it on first use; a daemon used for the first time is swept of
// what killed engine processes of this machine left there.
func (p *Plugin) daemonFor(ctx context.Context, pr params) (*daemon, error) {
	e, err := p.resolveEndpoint(pr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	d := p.daemons[e.key()]
	p.mu.Unlock()
	if d != nil {
		return d, nil
	}
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if e.proxy.HTTPProxy != "" || e.proxy.HTTPSProxy != "" {
		pf := e.proxy.ProxyFunc()
		tr := &http.Transport{Proxy: func(r *http.Request) (*url.URL, error) { return pf(r.URL) }}
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: tr}))
	}
	opts = append(opts, client.WithHost(e.host))
	if e.tlsDir != "" {
		opts = append(opts, client.WithTLSClientConfig(filepath.Join(e.tlsDir, "ca.pem"), filepath.Join(e.tlsDir, "cert.pem"), filepath.Join(e.tlsDir, "key.pem")))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "host", "Docker daemon %s: %v", e.host, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "host", "the Docker daemon at %s does not answer: %v", e.host, err)
	}
	d = &daemon{c: c, endpoint: e.host}
	if err := p.sweep(ctx, d); err != nil {
		p.log.Warn("could not remove everything killed engine processes left", "daemon", e.host, "error", err)
	}
	p.mu.Lock()
	if other := p.daemons[e.key()]; other != nil {
		p.mu.Unlock()
		c.Close()
		return other, nil
	}
	p.daemons[e.key()] = d
	p.mu.Unlock()
	return d, nil
}

// lockOwner holds this process's owner lock in dir (ownerlock): while
// it lives, no other engine process of this machine takes what it made
// for a killed one's.
func (p *Plugin) lockOwner(dir string) error { return p.locks.Hold(dir, p.owner) }

// sweep removes from d the containers, networks and volumes of this
// machine's engine processes that are gone.
func (p *Plugin) sweep(ctx context.Context, d *daemon) error {
	if err := p.lockOwner(p.config().stateDir); err != nil {
		return err
	}
	dir := p.config().stateDir
	// Only what was made by owners whose locks are in this directory: the
	// lock of an owner of another directory (another worker's home on this
	// machine) is not here, which does not make it gone.
	f := client.Filters{}.Add("label", labelEngine+"="+TypeName, labelHost+"="+p.host, labelState+"="+ownerlock.DirID(dir))
	gone := map[string]bool{}
	isGone := func(labels map[string]string) bool {
		o := labels[labelOwner]
		if o == p.owner {
			return false
		}
		g, ok := gone[o]
		if !ok {
			g = ownerlock.Gone(dir, o)
			gone[o] = g
		}
		return g
	}
	var errs []error
	cs, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		if isGone(c.Labels) {
			if _, err := d.c.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID, err))
			}
		}
	}
	ns, err := d.c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range ns.Items {
		if isGone(n.Labels) {
			if _, err := d.c.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			}
		}
	}
	vs, err := d.c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list volumes: %w", err))...)
	}
	for _, v := range vs.Items {
		if isGone(v.Labels) {
			if _, err := d.c.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func randomID(n int) string { return ownerlock.RandomID(n) }
