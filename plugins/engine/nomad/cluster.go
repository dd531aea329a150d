package nomad

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugins/engine/internal/ownerlock"
)

// cluster is a client of one Nomad cluster, as one identity (address,
// token, region, namespace).
type cluster struct {
	c       *api.Client
	address string
}

func clusterKey(pr params) string {
	return strings.Join([]string{pr.address, pr.token, pr.region, pr.namespace}, "\x00")
}

// clusterFor returns the client of a job's parameters, opening it on first
// use; a cluster used for the first time is swept of what killed engine
// processes of this machine left there.
func (p *Plugin) clusterFor(ctx context.Context, pr params) (*cluster, error) {
	key := clusterKey(pr)
	p.mu.Lock()
	cl := p.clusters[key]
	p.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	// DefaultConfig reads NOMAD_ADDR, NOMAD_TOKEN, NOMAD_REGION,
	// NOMAD_NAMESPACE and the TLS variables; parameters win over them.
	cfg := api.DefaultConfig()
	if pr.address != "" {
		cfg.Address = pr.address
	}
	if pr.token != "" {
		cfg.SecretID = pr.token
	}
	if pr.region != "" {
		cfg.Region = pr.region
	}
	if pr.namespace != "" {
		cfg.Namespace = pr.namespace
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "address", "Nomad at %s: %v", cfg.Address, err)
	}
	cl = &cluster{c: c, address: cfg.Address}
	// The engine's own query (its jobs), so a token limited to its
	// namespace passes; bounded, so an unreachable address does not hold
	// up the server's start.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, _, err := c.Jobs().List((&api.QueryOptions{Prefix: jobPrefix}).WithContext(pctx)); err != nil {
		// The API's errors name the address and the status, never the token.
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "address", "the Nomad agent at %s does not answer: %v", cfg.Address, err)
	}
	if err := p.sweep(ctx, cl); err != nil {
		p.log.Warn("could not remove everything killed engine processes left", "nomad", cfg.Address, "error", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if other := p.clusters[key]; other != nil {
		return other, nil
	}
	p.clusters[key] = cl
	return cl, nil
}

// lockOwner holds this process's owner lock in dir (ownerlock): while
// it lives, no other engine process of this machine takes what it made
// for a killed one's.
func (p *Plugin) lockOwner(dir string) error { return p.locks.Hold(dir, p.owner) }

// sweep stops and purges the jobs of this machine's engine processes that
// are gone. Stopping a job stops its allocation, which takes every process
// of its task with it (raw_exec: the task's cgroup; docker: the container).
func (p *Plugin) sweep(ctx context.Context, cl *cluster) error {
	dir := p.config().stateDir
	if err := p.lockOwner(dir); err != nil {
		return err
	}
	q := (&api.QueryOptions{Prefix: jobPrefix}).WithContext(ctx)
	jobs, _, err := cl.c.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	state := ownerlock.DirID(dir)
	gone := map[string]bool{}
	var errs []error
	for _, j := range jobs {
		// Only jobs of owners whose locks are in this directory: the lock
		// of an owner of another directory (another worker's home on this
		// machine) is not here, which does not make it gone.
		if j.Meta[metaEngine] != TypeName || j.Meta[metaHost] != p.host || j.Meta[metaState] != state {
			continue
		}
		o := j.Meta[metaOwner]
		if o == p.owner {
			continue
		}
		g, ok := gone[o]
		if !ok {
			g = ownerlock.Gone(dir, o)
			gone[o] = g
		}
		if !g {
			continue
		}
		p.log.Info("stopping and purging a job a killed engine process left", "job", j.ID)
		if err := p.stopAndPurge(ctx, cl, j.ID, j.Meta[metaWorkspace], p.config().grace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func randomID(n int) string { return ownerlock.RandomID(n) }
