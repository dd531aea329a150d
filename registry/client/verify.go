package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/lock"
	"github.com/palvella/palvella/registry/manifest"
)

// Verify re-hashes every installed plugin against the lock file and checks
// that the lock was not edited by hand: each entry's executable hash
// against the artifact hash recorded for this platform. A broken entry is
// one Check (Broken) among the others rather than a failure of the whole
// lock. It runs no plugin; VerifyDeep also asks each binary its manifest.
func (c *Client) Verify() ([]lock.Check, error) {
	return c.verify(nil, 0)
}

// VerifyDeep is Verify, and also runs each installed binary whose hash
// matches with --describe (within timeout; 0: manifest.DefaultTimeout) and
// compares the name and version it reports with its lock entry: a version
// changed by hand in the lock is found there.
func (c *Client) VerifyDeep(ctx context.Context, timeout time.Duration) ([]lock.Check, error) {
	return c.verify(ctx, timeout)
}

func (c *Client) verify(ctx context.Context, timeout time.Duration) ([]lock.Check, error) {
	lf, broken, err := lock.LoadLenient(c.LockPath)
	if err != nil {
		return nil, err
	}
	checks := make([]lock.Check, 0, len(lf.Plugins)+len(broken))
	var errs []error
	platform := PlatformKey(c)
	for i := range lf.Plugins {
		e := &lf.Plugins[i]
		ch := lock.Check{Name: e.Name, Path: e.Path, Err: lock.VerifyEntry(e)}
		if ch.Err == nil {
			if ch.Err = e.CheckArtifact(platform); ch.Err != nil {
				ch.Edited = true
			}
		}
		if ch.Err == nil && ctx != nil {
			if ch.Err = CheckManifest(ctx, e, timeout); ch.Err != nil {
				ch.Edited = errors.Is(ch.Err, registry.ErrChecksum)
			}
		}
		if ch.Err != nil {
			errs = append(errs, ch.Err)
		}
		checks = append(checks, ch)
	}
	for _, b := range broken {
		name := b.Name
		if name == "" {
			name = fmt.Sprintf("plugins[%d]", b.Index)
		}
		checks = append(checks, lock.Check{Name: name, Broken: true, Err: b.Err})
		errs = append(errs, b.Err)
	}
	return checks, errors.Join(errs...)
}

// CheckManifest runs e's binary with --describe and compares the name and
// version it reports with the lock entry. A difference is an ErrChecksum
// error saying the lock was edited; a binary that does not describe itself
// is an ErrInvalidArgument error.
func CheckManifest(ctx context.Context, e *lock.Entry, timeout time.Duration) error {
	m, err := manifest.Read(ctx, e.Path, timeout)
	if err != nil {
		return fmt.Errorf("read the manifest of %s: %w", e.Name, err)
	}
	what := ""
	switch {
	case m.Name != e.Name:
		what = fmt.Sprintf("the binary says it is %s, the lock records %s", m.Name, e.Name)
	case m.Version != e.Version:
		what = fmt.Sprintf("the binary says it is version %s, the lock records %s", m.Version, e.Version)
	default:
		return nil
	}
	return &registry.Error{Kind: registry.ErrChecksum, Plugin: e.Name, Version: e.Version, Field: "version",
		Detail: what + "; the lock was edited by hand",
		Hint:   "reinstall it (palvella plugin remove NAME, then palvella plugin add NAME) and find out who edited the lock"}
}
