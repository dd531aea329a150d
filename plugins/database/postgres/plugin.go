// Package postgres is the scale-out database plugin: the core's resources
// and work queue in a PostgreSQL database, through pgx (jackc/pgx/v5 and
// its pool). Several Palvella servers can share one database: resource
// writes are serialized on one revision row so that revisions become
// visible in order, the queue hands out items with FOR UPDATE SKIP LOCKED
// and fences leases with a sequence, watchers are woken by LISTEN/NOTIFY
// and resync after a reconnect, and the embedded migrations run under an
// advisory lock. docs/design/database-postgres.md gives the reasons.
package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// Name is the plugin's name.
const Name = "database-postgres"

// Version is the plugin's version.
const Version = "0.1.0"

// DefaultMaxConns is the pool's size when the configuration does not say.
// The listener holds one more connection.
const DefaultMaxConns = 10

// DefaultConnectTimeout bounds each connection attempt when neither the
// configuration nor the DSN says: a call made while PostgreSQL is
// unreachable fails after it.
const DefaultConnectTimeout = 5 * time.Second

// Plugin is the PostgreSQL database plugin.
type Plugin struct {
	log hclog.Logger

	mu sync.RWMutex
	st *store
	// noDSN: configured without a dsn (as `palvella plugin describe`
	// configures every plugin); calls fail saying a dsn is needed.
	noDSN bool
}

var _ database.Database = (*Plugin)(nil)

// New returns an unconfigured plugin; Configure connects to the database.
func New() *Plugin { return NewWithLogger(hclog.NewNullLogger()) }

// NewWithLogger returns an unconfigured plugin that logs to log.
func NewWithLogger(log hclog.Logger) *Plugin { return &Plugin{log: log} }

// Serve runs the plugin as a plugin process; it logs to stderr, which the
// core reads.
func Serve(opts ...sdk.ServeOption) int {
	p := NewWithLogger(sdk.Logger(Name))
	return sdk.ServeWith(p, []sdk.Service{database.Service(p)}, opts...)
}

// Describe returns the manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Resources and the work queue in PostgreSQL: several servers on one database.",
		Categories:       []sdk.Category{sdk.CategoryDatabase},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: map[string]any{
			"$schema":              "https://json-schema.org/draft/2020-12/schema",
			"type":                 "object",
			"additionalProperties": false,
			"properties": map[string]any{
				"dsn": map[string]any{
					"type":      "string",
					"minLength": 1,
					"description": "The PostgreSQL connection string, as a URL (postgres://user:password@host:5432/palvella?sslmode=verify-full) " +
						"or key=value pairs. Give it with {from_env: VAR}, {from_file: PATH} or {from_credential: NAME} rather than " +
						"writing a password in the file; the password never appears in logs or errors. The tables are created on " +
						"first use in the database (or the schema search_path names).",
				},
				"max_conns": map[string]any{
					"type":        "integer",
					"minimum":     1,
					"maximum":     1000,
					"description": fmt.Sprintf("Largest number of pooled connections; the listener of changes holds one more. Default: %d.", DefaultMaxConns),
				},
				"connect_timeout": map[string]any{
					"type":        "string",
					"description": "How long a connection attempt may take, as a Go duration such as 5s; calls made while PostgreSQL is unreachable fail after it. Default: connect_timeout of the DSN, else 5s.",
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

// positiveInt reads a JSON number (float64 after decoding, or int) that
// must be a whole number of at least 1.
func positiveInt(raw any) (int, bool) {
	switch n := raw.(type) {
	case int:
		return n, n >= 1
	case int64:
		return int(n), n >= 1
	case float64:
		return int(n), n >= 1 && n == float64(int(n))
	}
	return 0, false
}

func duration(raw any) (time.Duration, bool) {
	s, _ := raw.(string)
	d, err := time.ParseDuration(s)
	return d, err == nil && d > 0
}

// Configure connects to the database the config's dsn names, brings its
// schema up to date and starts listening for changes. Called again, it
// switches to the new database and closes the previous pool.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	set := settings{maxConns: DefaultMaxConns, history: DefaultHistory, historyChanges: DefaultHistoryChanges}
	for k, raw := range req.Config {
		switch k {
		case "dsn":
			s, ok := raw.(string)
			if !ok || s == "" {
				return diagnostic("config.dsn", "dsn must be a non-empty connection string", fmt.Sprintf("got %T", raw)), nil
			}
			set.dsn = s
		case "max_conns":
			n, ok := positiveInt(raw)
			if !ok || n > 1000 {
				return diagnostic("config.max_conns", "max_conns must be a whole number from 1 to 1000", fmt.Sprintf("got %v", raw)), nil
			}
			set.maxConns = int32(n)
		case "connect_timeout":
			d, ok := duration(raw)
			if !ok {
				return diagnostic("config.connect_timeout", "connect_timeout must be a positive duration such as 5s", fmt.Sprintf("got %v", raw)), nil
			}
			set.connectTimeout = d
		case "history":
			d, ok := duration(raw)
			if !ok {
				return diagnostic("config.history", "history must be a positive duration such as 72h", fmt.Sprintf("got %v", raw)), nil
			}
			set.history = d
		case "history_changes":
			n, ok := positiveInt(raw)
			if !ok {
				return diagnostic("config.history_changes", "history_changes must be a positive whole number such as 10000", fmt.Sprintf("got %v", raw)), nil
			}
			set.historyChanges = n
		default:
			return diagnostic("config."+k, "unknown setting "+k, "database-postgres accepts dsn, max_conns, connect_timeout, history and history_changes"), nil
		}
	}
	if set.dsn == "" {
		// Not an error: the plugin host configures every plugin it
		// launches, `palvella plugin describe` too, with the
		// configuration it has. Calls fail until a dsn is given.
		_ = p.Close()
		p.mu.Lock()
		p.noDSN = true
		p.mu.Unlock()
		return &sdk.ConfigureResponse{Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityWarning, Field: "config.dsn",
			Summary: "no dsn: the plugin serves no call until it is configured with one", Detail: dsnExample}}}, nil
	}
	st, err := openStore(ctx, set, p.log)
	if err != nil {
		return diagnostic("config.dsn", "cannot use the PostgreSQL database", err.Error()), nil
	}
	p.mu.Lock()
	old := p.st
	p.st, p.noDSN = st, false
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	p.log.Info("connected", "database", st.target)
	return &sdk.ConfigureResponse{}, nil
}

// dsnExample shows how a server gives the plugin its dsn.
const dsnExample = "in the server's configuration: database: {plugin: database-postgres, config: {dsn: {from_env: PALVELLA_DATABASE_DSN}}}, " +
	"with PALVELLA_DATABASE_DSN=postgres://palvella@db.example:5432/palvella"

// errNoDSN is returned by calls to a plugin configured without a dsn.
var errNoDSN = sdk.Errorf(sdk.ErrFailedPrecondition, "config.dsn", "database-postgres has no dsn; give it %s", dsnExample)

func diagnostic(field, summary, detail string) *sdk.ConfigureResponse {
	return &sdk.ConfigureResponse{Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityError, Field: field, Summary: summary, Detail: detail}}}
}

// Close closes the pool and stops listening. The plugin can be configured
// again.
func (p *Plugin) Close() error {
	p.mu.Lock()
	st := p.st
	p.st = nil
	p.mu.Unlock()
	if st != nil {
		st.close()
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
		if p.noDSN {
			return nil, errNoDSN
		}
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
