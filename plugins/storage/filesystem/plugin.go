// Package filesystem is the default storage plugin: objects are files under
// one root folder, laid out by scope so an operator can browse them:
//
//	<root>/objects/<kind>/<namespace>/<pipeline>[/<run>[/<job>]]/<key>
//	<root>/sums/...    the same paths: size, time and sha256 of each object
//	<root>/tmp/        objects being written
//
// Paths are computed only from validated scope parts and keys, and every
// file operation goes through an os.Root, which refuses to follow a symlink
// out of the root. A Put writes a temporary file and renames it into place
// once complete, so readers see the old object or the new one, never part
// of one.
package filesystem

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// Name is the plugin's name.
const Name = "storage-filesystem"

// Version is the plugin's version.
const Version = "0.1.0"

// DefaultRoot is where objects are kept when the configuration gives no
// root.
func DefaultRoot() string { return filepath.Join(os.TempDir(), "palvella", "storage") }

// staleTemp is the age after which Configure removes temporary files left
// by a Put that never finished (the process died).
const staleTemp = time.Hour

// Plugin is the filesystem storage plugin.
type Plugin struct {
	mu sync.RWMutex
	fs *store
}

var _ storage.Storage = (*Plugin)(nil)

// New returns an unconfigured plugin; Configure opens the root.
func New() *Plugin { return &Plugin{} }

// Serve runs the plugin as a plugin process.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{storage.Service(p)}, opts...)
}

// Describe returns the manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Objects as files under one folder, by scope; writes are atomic renames.",
		Categories:       []sdk.Category{sdk.CategoryStorage},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: map[string]any{
			"$schema":              "https://json-schema.org/draft/2020-12/schema",
			"type":                 "object",
			"additionalProperties": false,
			"properties": map[string]any{
				"root": map[string]any{
					"type":        "string",
					"minLength":   1,
					"description": "Folder that holds the objects, created if missing. Default: palvella/storage under the system's temporary directory.",
				},
			},
		},
	}, nil
}

// Configure opens the folder named by config `root` (or the default).
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	root := DefaultRoot()
	if raw, ok := req.Config["root"]; ok {
		s, isString := raw.(string)
		if !isString || s == "" {
			return diagnostic("config.root", "root must be a non-empty string", fmt.Sprintf("got %T", raw)), nil
		}
		root = s
	}
	for k := range req.Config {
		if k != "root" {
			return diagnostic("config."+k, "unknown setting "+k, "storage-filesystem accepts only root"), nil
		}
	}
	fs, err := openStore(ctx, root)
	if err != nil {
		return diagnostic("config.root", "cannot use the storage folder", err.Error()), nil
	}
	p.mu.Lock()
	old := p.fs
	p.fs = fs
	p.mu.Unlock()
	if old != nil {
		if err := old.close(); err != nil {
			return nil, fmt.Errorf("close the previous storage folder: %w", err)
		}
	}
	return &sdk.ConfigureResponse{}, nil
}

func diagnostic(field, summary, detail string) *sdk.ConfigureResponse {
	return &sdk.ConfigureResponse{Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityError, Field: field, Summary: summary, Detail: detail}}}
}

// Close releases the root folder. The plugin can be configured again.
func (p *Plugin) Close() error {
	p.mu.Lock()
	fs := p.fs
	p.fs = nil
	p.mu.Unlock()
	if fs == nil {
		return nil
	}
	return fs.close()
}

func (p *Plugin) store(ctx context.Context) (*store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.fs == nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "storage-filesystem is not configured")
	}
	return p.fs, nil
}

// Put stores an object.
func (p *Plugin) Put(ctx context.Context, ref storage.ObjectRef, r io.Reader) (*storage.ObjectInfo, error) {
	fs, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return fs.put(ctx, ref, r)
}

// Get opens an object for reading.
func (p *Plugin) Get(ctx context.Context, ref storage.ObjectRef) (io.ReadCloser, *storage.ObjectInfo, error) {
	fs, err := p.store(ctx)
	if err != nil {
		return nil, nil, err
	}
	return fs.get(ctx, ref)
}

// Stat describes an object.
func (p *Plugin) Stat(ctx context.Context, ref storage.ObjectRef) (*storage.ObjectInfo, error) {
	fs, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return fs.stat(ctx, ref)
}

// List returns a page of the objects of a scope.
func (p *Plugin) List(ctx context.Context, req *storage.ListRequest) (*storage.ListResponse, error) {
	fs, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return fs.list(ctx, req)
}

// Delete removes an object.
func (p *Plugin) Delete(ctx context.Context, ref storage.ObjectRef) error {
	fs, err := p.store(ctx)
	if err != nil {
		return err
	}
	return fs.delete(ctx, ref)
}

// Prune deletes the objects of a scope kind modified before olderThan.
func (p *Plugin) Prune(ctx context.Context, kind storage.ScopeKind, olderThan time.Time) (int64, error) {
	fs, err := p.store(ctx)
	if err != nil {
		return 0, err
	}
	return fs.prune(ctx, kind, olderThan)
}
