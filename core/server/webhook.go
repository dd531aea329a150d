package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/metrics"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/trigger"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// TriggerConfig configures the triggers of a server.
type TriggerConfig struct {
	// WebhookListen is the address of the webhook listener, separate from
	// the API so that operators can expose it alone; "off" serves no
	// webhooks. When empty, 127.0.0.1:7701 is tried, and if another
	// program holds it the server runs without webhooks and says so.
	WebhookListen string
	// MaxWebhookBody limits a webhook call's body (default 1 MiB).
	MaxWebhookBody int64
	// MinInterval is the shortest interval trigger pipelines may declare
	// (default 1m).
	MinInterval time.Duration
	// MaxJitter bounds the delay of due times missed while the server was
	// down (default 30s, at most a tenth of an interval).
	MaxJitter time.Duration
	// RecordRetention is how long trigger records are kept (default 30
	// days; negative keeps them for ever), and also how long a webhook
	// delivery ID is refused as a replay.
	RecordRetention time.Duration
	// MaxRecordsPerPipeline bounds the trigger records of one pipeline
	// (default 1000; negative for no bound). Records of accepted webhook
	// deliveries go with the retention only.
	MaxRecordsPerPipeline int
}

// newMetrics returns the server's metrics, reading plugin state from mgr.
func newMetrics(mgr *pluginhost.Manager) *metrics.Metrics {
	return metrics.New(func() []metrics.PluginState {
		var out []metrics.PluginState
		for _, st := range mgr.List() {
			out = append(out, metrics.PluginState{Name: st.Name, State: string(st.State), Restarts: st.Restarts})
		}
		return out
	})
}

// startTriggers starts the schedule loop and the webhook listener. The
// returned function stops the listener and waits for both.
func startTriggers(ctx context.Context, cfg Config, choices map[sdk.Category]string, mgr *pluginhost.Manager, orch *orchestrator.Orchestrator, bus *events.Bus, m *metrics.Metrics) (func(), error) {
	tc := cfg.Triggers
	ctx, cancel := context.WithCancel(ctx)
	svc, err := trigger.New(trigger.Options{
		Database: func(ctx context.Context) (database.Database, error) {
			p, err := mgr.Plugin(choices[sdk.CategoryDatabase])
			if err != nil {
				return nil, err
			}
			return pluginhost.Client[database.Database](ctx, p, sdk.CategoryDatabase)
		},
		Runner: orch,
		Secret: func(ctx context.Context, ns, pipeline, name string) ([]byte, error) {
			return readCredential(ctx, mgr, choices[sdk.CategoryCredential], ns, pipeline, name)
		},
		Logger:      cfg.Logger.Named("trigger"),
		Events:      bus,
		Metrics:     m,
		MaxBody:     tc.MaxWebhookBody,
		MinInterval: tc.MinInterval,
		MaxJitter:   tc.MaxJitter,

		RecordRetention: tc.RecordRetention,
		MaxRecords:      tc.MaxRecordsPerPipeline,
	})
	if err != nil {
		cancel()
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		svc.Run(ctx)
	}()
	addr := tc.WebhookListen
	if addr == "" {
		addr = "127.0.0.1:7701"
	}
	if addr == "off" {
		return func() { cancel(); wg.Wait() }, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && tc.WebhookListen == "" {
		cfg.Logger.Warn("no webhooks: the default webhook address is taken; set --webhook-listen", "address", addr, "error", err)
		fmt.Fprintf(cfg.Out, "Webhooks are off: %s is taken (set --webhook-listen)\n", addr)
		return func() { cancel(); wg.Wait() }, nil
	}
	if err != nil {
		cancel()
		wg.Wait()
		return nil, fmt.Errorf("listen for webhooks on %s: %w", addr, err)
	}
	// Read-header, read and idle timeouts as the API's (hygiene.go).
	srv := cfg.HTTP.apply(&http.Server{Handler: svc.WebhookHandler(),
		BaseContext: func(net.Listener) context.Context { return ctx }})
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if cfg.TLSCert != "" {
			err = srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("serve webhooks", "error", err)
		}
	}()
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	fmt.Fprintf(cfg.Out, "Webhooks are served on %s/hooks/<namespace>/<pipeline>/<trigger>\n", url)
	cfg.Logger.Info("webhook listener started", "url", url)
	return func() {
		shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer done()
		_ = srv.Shutdown(shutdownCtx) // in-flight calls get 10s
		cancel()
		wg.Wait()
	}, nil
}

// readCredential reads a credential's value ("value", or its only key)
// from the credential plugin, for webhook secrets.
// readCredential reads a webhook secret for a pipeline, refusing a
// credential its namespace and pipeline may not use.
func readCredential(ctx context.Context, mgr *pluginhost.Manager, plugin, ns, pipeline, name string) ([]byte, error) {
	if plugin == "" {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server runs no credential plugin")
	}
	p, err := mgr.Plugin(plugin)
	if err != nil {
		return nil, err
	}
	c, err := pluginhost.Client[credential.Credential](ctx, p, sdk.CategoryCredential)
	if err != nil {
		return nil, err
	}
	sec, err := c.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := orchestrator.CheckCredentialAccess(name, orchestrator.CredentialOwnerOf(sec.Meta), ns, pipeline); err != nil {
		return nil, err
	}
	if v, ok := sec.Data["value"]; ok {
		return v, nil
	}
	if len(sec.Data) == 1 {
		for _, v := range sec.Data {
			return v, nil
		}
	}
	return nil, fmt.Errorf("credential %q has no key \"value\"", name)
}
