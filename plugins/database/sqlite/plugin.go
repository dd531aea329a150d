// Package sqlite is the default database plugin: the core's resources and
// work queue in one embedded SQLite file (github.com/mattn/go-sqlite3), in
// WAL mode with foreign keys on. It needs no setup, which makes it the
// database of a single-node Palvella; several servers share a Postgres
// database instead.
package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// Name is the plugin's name.
const Name = "database-sqlite"

// Version is the plugin's version.
const Version = "0.1.0"

// DefaultPath is where the database lives when the configuration gives no
// path.
func DefaultPath() string { return filepath.Join(os.TempDir(), "palvella", "palvella.db") }

// Plugin is the SQLite database plugin.
type Plugin struct {
	mu sync.RWMutex
	st *store
}

var _ database.Database = (*Plugin)(nil)
var _ database.Batcher = (*Plugin)(nil)

// New returns an unconfigured plugin; Configure opens the database.
func New() *Plugin { return &Plugin{} }

// Serve runs the plugin as a plugin process.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{database.Service(p)}, opts...)
}

// Describe returns the manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Resources and the work queue in an embedded SQLite file: no setup, one node.",
		Categories:       []sdk.Category{sdk.CategoryDatabase},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: map[string]any{
			"$schema":              "https://json-schema.org/draft/2020-12/schema",
			"type":                 "object",
			"additionalProperties": false,
			"properties": map[string]any{
				"path": map[string]any{
					"type":        "string",
					"minLength":   1,
					"description": "Path of the database file, created if missing. Default: palvella/palvella.db under the system's temporary directory.",
				},
				"synchronous": map[string]any{
					"type":        "string",
					"enum":        []any{SyncNormal, SyncFull},
					"description": "normal (default): commits survive the process being killed; full: they also survive a power loss, at the cost of an fsync per commit.",
				},
				"history": map[string]any{
					"type":        "string",
					"description": "How long the change history is kept for watchers to resume from, as a Go duration such as 72h. Default: 168h.",
				},
				"history_changes": map[string]any{
					"type":        "integer",
					"minimum":     1,
					"description": "How many changes the history keeps at most, whatever their age (the oldest go first). Default: 10000.",
				},
			},
		},
	}, nil
}

// Configure opens the database file named by config `path` (or the default)
// and brings its schema up to date. Called again with another path, it
// switches to that file and closes the previous one.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	path := DefaultPath()
	if raw, ok := req.Config["path"]; ok {
		s, isString := raw.(string)
		if !isString || s == "" {
			return diagnostic("config.path", "path must be a non-empty string", fmt.Sprintf("got %T", raw)), nil
		}
		path = s
	}
	history := DefaultHistory
	if raw, ok := req.Config["history"]; ok {
		s, _ := raw.(string)
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return diagnostic("config.history", "history must be a positive duration such as 72h", fmt.Sprintf("got %v", raw)), nil
		}
		history = d
	}
	maxChanges := DefaultHistoryChanges
	if raw, ok := req.Config["history_changes"]; ok {
		n, isNumber := raw.(float64)
		if i, isInt := raw.(int); isInt {
			n, isNumber = float64(i), true
		}
		if !isNumber || n < 1 || n != float64(int(n)) {
			return diagnostic("config.history_changes", "history_changes must be a positive whole number such as 10000", fmt.Sprintf("got %v", raw)), nil
		}
		maxChanges = int(n)
	}
	sync := SyncNormal
	if raw, ok := req.Config["synchronous"]; ok {
		if s, _ := raw.(string); s == SyncNormal || s == SyncFull {
			sync = s
		} else {
			return diagnostic("config.synchronous", "synchronous must be normal or full", fmt.Sprintf("got %v", raw)), nil
		}
	}
	for k := range req.Config {
		if k != "path" && k != "history" && k != "history_changes" && k != "synchronous" {
			return diagnostic("config."+k, "unknown setting "+k, "database-sqlite accepts path, synchronous, history and history_changes"), nil
		}
	}
	st, err := openStoreSync(ctx, path, sync)
	if err != nil {
		return diagnostic("config.path", "cannot open the database", err.Error()), nil
	}
	st.keepHistory(history, maxChanges)
	p.mu.Lock()
	old := p.st
	p.st = st
	p.mu.Unlock()
	if old != nil {
		if err := old.close(); err != nil {
			return nil, fmt.Errorf("close the previous database %s: %w", old.path, err)
		}
	}
	return &sdk.ConfigureResponse{}, nil
}

func diagnostic(field, summary, detail string) *sdk.ConfigureResponse {
	return &sdk.ConfigureResponse{Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityError, Field: field, Summary: summary, Detail: detail}}}
}

// Close closes the database file. The plugin can be configured again.
func (p *Plugin) Close() error {
	p.mu.Lock()
	st := p.st
	p.st = nil
	p.mu.Unlock()
	if st == nil {
		return nil
	}
	if err := st.close(); err != nil {
		return fmt.Errorf("close database %s: %w", st.path, err)
	}
	return nil
}

// store returns the open store, failing when ctx is done or the plugin is
// not configured.
func (p *Plugin) store(ctx context.Context) (*store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st == nil {
		return nil, errNotConfigured
	}
	return p.st, nil
}

// Get returns one resource.
func (p *Plugin) Get(ctx context.Context, key database.Key) (*database.Resource, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.get(ctx, key)
}

// List returns a page of resources.
func (p *Plugin) List(ctx context.Context, req *database.ListRequest) (*database.ListResponse, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.list(ctx, req)
}

// Create stores a new resource.
func (p *Plugin) Create(ctx context.Context, res *database.Resource) (*database.Resource, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.create(ctx, res)
}

// Update replaces a resource at the expected revision.
func (p *Plugin) Update(ctx context.Context, res *database.Resource) (*database.Resource, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.update(ctx, res)
}

// Batch applies several writes in one transaction.
func (p *Plugin) Batch(ctx context.Context, ops []database.Op) ([]database.OpResult, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.batch(ctx, ops)
}

// Delete removes a resource.
func (p *Plugin) Delete(ctx context.Context, req *database.DeleteRequest) error {
	st, err := p.store(ctx)
	if err != nil {
		return err
	}
	return st.delete(ctx, req)
}

// Watch streams the changes of a kind.
func (p *Plugin) Watch(ctx context.Context, req *database.WatchRequest, fn func(database.Event) error) error {
	st, err := p.store(ctx)
	if err != nil {
		return err
	}
	return st.watch(ctx, req, fn)
}

// Enqueue adds an item to a queue.
func (p *Plugin) Enqueue(ctx context.Context, req *database.EnqueueRequest) (*database.QueueItem, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.enqueue(ctx, req)
}

// Lease hands out one available item, or nil.
func (p *Plugin) Lease(ctx context.Context, req *database.LeaseRequest) (*database.QueueItem, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.lease(ctx, req)
}

// Renew extends a lease.
func (p *Plugin) Renew(ctx context.Context, req *database.RenewRequest) (*database.QueueItem, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return st.renew(ctx, req)
}

// Ack removes a leased item.
func (p *Plugin) Ack(ctx context.Context, req *database.AckRequest) error {
	st, err := p.store(ctx)
	if err != nil {
		return err
	}
	return st.ack(ctx, req)
}

// Nack returns a leased item to its queue.
func (p *Plugin) Nack(ctx context.Context, req *database.NackRequest) error {
	st, err := p.store(ctx)
	if err != nil {
		return err
	}
	return st.nack(ctx, req)
}
