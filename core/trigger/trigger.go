// Package trigger starts runs by themselves: webhook calls (served by
// [Service.WebhookHandler] on a listener of their own), interval and cron
// schedules ([Service.Run]). Every firing is written down as a
// [resource.TriggerRecord]: the runs it started, or why it was rejected or
// dropped, as the design document's "Trigger processing" describes.
//
// Schedules survive restarts: the next due time of each interval and cron
// trigger is kept as a [resource.TriggerState], and a server claims a due
// time by moving it forward with an update that carries the state's
// revision, so one due time starts at most one run even with several
// servers on one database. Due times missed while no server ran are
// coalesced into one run when a server comes back (after a jitter, so a
// restart does not start everything at once).
package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/expr"
	"github.com/palvella/palvella/core/metrics"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	rstore "github.com/palvella/palvella/core/store"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// Runner starts runs: the orchestrator.
type Runner interface {
	StartRun(ctx context.Context, ns, pipeline string, params map[string]string, trigger resource.TriggerInfo) (*resource.Run, error)
}

// Defaults.
const (
	DefaultMaxBody     = 1 << 20
	DefaultMinInterval = spec.DefaultMinInterval
	DefaultMaxJitter   = 30 * time.Second
	DefaultTick        = time.Second
)

// Options configure a Service.
type Options struct {
	// Database returns the database plugin's client.
	Database func(ctx context.Context) (database.Database, error)
	Runner   Runner
	// Secret reads a credential's value for a webhook secret written
	// {from_credential: NAME} in a pipeline of a namespace; it refuses a
	// credential that namespace and pipeline may not use.
	Secret func(ctx context.Context, namespace, pipeline, name string) ([]byte, error)
	Logger hclog.Logger
	// Events and Metrics, when set, are told about each firing.
	Events  *events.Bus
	Metrics *metrics.Metrics
	// MaxBody limits a webhook call's body (default 1 MiB).
	MaxBody int64
	// MinInterval is the shortest interval the server honours: a
	// trigger with a shorter one fires every MinInterval (default 1m).
	MinInterval time.Duration
	// MaxJitter bounds the delay added to due times missed while the
	// server was down (default 30s; at most a tenth of an interval).
	MaxJitter time.Duration
	// Tick is how often schedules are checked (default 1s).
	Tick time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RecordRetention is how long trigger records are kept (default 30
	// days; negative keeps them for ever). MaxRecords bounds the records
	// of one pipeline (default 1000; negative for no bound), delivery
	// claims excepted. PruneEvery is how often every record is checked
	// (default 10m). See retention.go.
	RecordRetention time.Duration
	MaxRecords      int
	PruneEvery      time.Duration
}

// Service fires triggers.
type Service struct {
	opts  Options
	store *rstore.Store
	log   hclog.Logger
	start time.Time
	// fireAt holds, per schedule key, the jittered time at which a due
	// time missed while down fires.
	fireAt map[string]jittered
	// prune counts records per pipeline between prunings.
	prune pruneState
	// schedules keeps each pipeline's schedule triggers between ticks,
	// by namespace/name (Tick).
	schedules map[string]schedules
}

type jittered struct {
	due, at time.Time
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Database == nil || opts.Runner == nil {
		return nil, errors.New("trigger: a database and a runner are required")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = DefaultMinInterval
	}
	if opts.MaxJitter <= 0 {
		opts.MaxJitter = DefaultMaxJitter
	}
	if opts.Tick <= 0 {
		opts.Tick = DefaultTick
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RecordRetention == 0 {
		opts.RecordRetention = DefaultRecordRetention
	}
	if opts.MaxRecords == 0 {
		opts.MaxRecords = DefaultMaxRecords
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = DefaultPruneEvery
	}
	return &Service{opts: opts, store: &rstore.Store{DB: opts.Database}, log: opts.Logger, start: opts.Now().UTC(), fireAt: map[string]jittered{}}, nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// firing is one trigger firing being handled.
type firing struct {
	rec     resource.TriggerRecord
	payload map[string]any
	raw     []byte
}

// newRecordName returns a unique record name, ordered by time.
func newRecordName(at time.Time) string { return resource.NewTriggerRecordName(at) }

// mapParams interpolates a trigger's params over what fired it.
func mapParams(t *spec.Trigger, typ string, payload map[string]any, headers map[string]string) (map[string]string, error) {
	c := expr.Context{Trigger: expr.Trigger{Type: typ, Name: t.Name, Payload: payload, Headers: headers}}
	out := make(map[string]string, len(t.Params))
	for k, v := range t.Params {
		s, err := expr.Interpolate(v, c)
		if err != nil {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params."+k, "%v", err)
		}
		out[k] = s
	}
	return out, nil
}

// fire starts the run of an accepted firing and writes its record. The
// record's name must be set; if create is false the record exists already
// (a webhook's claimed delivery) and is updated.
func (s *Service) fire(ctx context.Context, f *firing, t *spec.Trigger, exists bool) (*resource.TriggerRecord, error) {
	rec := &f.rec
	params, err := mapParams(t, rec.Type, f.payload, rec.Headers)
	if err == nil {
		rec.Params = params
		var run *resource.Run
		info := resource.TriggerInfo{Type: rec.Type, Name: rec.Trigger, Record: rec.Name, Headers: rec.Headers}
		if f.payload != nil {
			info.Payload = f.payload
		}
		run, err = s.opts.Runner.StartRun(ctx, rec.Namespace, rec.Pipeline, params, info)
		if err == nil {
			rec.Outcome = resource.TriggerStarted
			rec.Runs = append(rec.Runs, run.Name)
		}
	}
	if err != nil {
		rec.Outcome = resource.TriggerFailed
		rec.Reason = "could not start a run: " + err.Error()
		s.log.Warn("trigger fired but no run started", "namespace", rec.Namespace, "pipeline", rec.Pipeline, "trigger", rec.Trigger, "error", err)
	}
	if exists {
		return rec, s.updateRecord(ctx, rec)
	}
	return rec, s.createRecord(ctx, rec)
}

// RecordingRunner is a Runner that writes the record of a firing in the
// same database call as the run it starts (the orchestrator's
// StartRunRecorded): both are stored or neither. pl, if not nil, is the
// pipeline as the caller just read it (it is written back guarded by its
// revision, so a stale one costs a retry, never a lost change). It fails
// with an error matching sdk.ErrAlreadyExists, whose *store.OpError names
// the record's key, when the record exists (a replayed delivery), and with
// sdk.ErrUnimplemented, having written nothing, when it cannot do it in
// one call.
type RecordingRunner interface {
	Runner
	StartRunRecorded(ctx context.Context, pl *resource.Pipeline, params map[string]string, trigger resource.TriggerInfo, rec *resource.TriggerRecord) (*resource.Run, error)
}

// fireRecorded starts the run of a firing whose record is not written yet
// and writes the record, with the run, in one database call. handled is
// false when that cannot be done (the runner or the database cannot, or
// the params do not map): nothing was written, and the caller claims the
// record and fires the usual way. replayed is true when the record exists.
func (s *Service) fireRecorded(ctx context.Context, f *firing, t *spec.Trigger, pl *resource.Pipeline) (out *resource.TriggerRecord, replayed, handled bool, err error) {
	rr, ok := s.opts.Runner.(RecordingRunner)
	if !ok {
		return nil, false, false, nil
	}
	rec := &f.rec
	params, err := mapParams(t, rec.Type, f.payload, rec.Headers)
	if err != nil {
		return nil, false, false, nil // the usual way records why
	}
	rec.Params = params
	info := resource.TriggerInfo{Type: rec.Type, Name: rec.Trigger, Record: rec.Name, Headers: rec.Headers}
	if f.payload != nil {
		info.Payload = f.payload
	}
	_, err = rr.StartRunRecorded(ctx, pl, params, info, rec)
	var oe *rstore.OpError
	switch {
	case err == nil:
		s.recorded(rec)
		return rec, false, true, nil
	case errors.Is(err, sdk.ErrUnimplemented):
		return nil, false, false, nil
	case errors.Is(err, sdk.ErrAlreadyExists) && errors.As(err, &oe) && oe.Key == rstore.KeyOf(&rec.Meta):
		return nil, true, true, nil
	}
	// No run started and nothing was written: record why.
	rec.Outcome, rec.Runs = resource.TriggerFailed, nil
	rec.Reason = "could not start a run: " + err.Error()
	s.log.Warn("trigger fired but no run started", "namespace", rec.Namespace, "pipeline", rec.Pipeline, "trigger", rec.Trigger, "error", err)
	rec.Kind, rec.Labels = resource.KindTriggerRecord, recordLabels(rec)
	if cerr := s.create(ctx, rec); cerr != nil {
		if errors.Is(cerr, sdk.ErrAlreadyExists) {
			return nil, true, true, nil
		}
		return nil, false, true, fmt.Errorf("record the firing of %s/%s: %w", rec.Namespace, rec.Pipeline, cerr)
	}
	s.recorded(rec)
	return rec, false, true, nil
}

// labels of a record, for selection.
func recordLabels(r *resource.TriggerRecord) map[string]string { return r.SelectorLabels() }

func (s *Service) createRecord(ctx context.Context, rec *resource.TriggerRecord) error {
	rec.Kind = resource.KindTriggerRecord
	rec.Labels = recordLabels(rec)
	if err := s.create(ctx, rec); err != nil {
		return fmt.Errorf("record the firing of %s/%s: %w", rec.Namespace, rec.Pipeline, err)
	}
	s.recorded(rec)
	s.noteRecord(rec.Namespace, rec.Pipeline)
	return nil
}

func (s *Service) updateRecord(ctx context.Context, rec *resource.TriggerRecord) error {
	rec.Labels = recordLabels(rec)
	if err := s.update(ctx, rec); err != nil {
		return fmt.Errorf("record the firing of %s/%s: %w", rec.Namespace, rec.Pipeline, err)
	}
	s.recorded(rec)
	return nil
}

// recorded tells events and metrics about a finished record.
func (s *Service) recorded(rec *resource.TriggerRecord) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.TriggerFirings.WithLabelValues(rec.Type, rec.Outcome).Inc()
	}
	if s.opts.Events != nil {
		e := events.Event{Type: events.TypeTrigger, Namespace: rec.Namespace, Pipeline: rec.Pipeline, Trigger: rec.Trigger, Status: rec.Outcome, Reason: rec.Reason}
		if len(rec.Runs) > 0 {
			e.Run = rec.Runs[0]
		}
		s.opts.Events.Publish(e)
	}
	s.log.Info("trigger fired", "namespace", rec.Namespace, "pipeline", rec.Pipeline, "trigger", rec.Trigger, "type", rec.Type,
		"record", rec.Name, "outcome", rec.Outcome, "reason", rec.Reason, "runs", rec.Runs)
}

// pipelineTrigger reads a pipeline's current spec and finds a trigger in
// it, returning both. It returns sdk.ErrNotFound when either is missing.
func (s *Service) pipelineTrigger(ctx context.Context, ns, pipeline, name string) (*spec.Trigger, *resource.Pipeline, error) {
	var pl resource.Pipeline
	if err := s.get(ctx, resource.KindPipeline, ns, pipeline, &pl); err != nil {
		return nil, nil, err
	}
	var p spec.Pipeline
	if err := json.Unmarshal(pl.Spec, &p); err != nil {
		return nil, nil, fmt.Errorf("read the spec of pipeline %s/%s: %w", ns, pipeline, err)
	}
	for i := range p.Spec.Triggers {
		if p.Spec.Triggers[i].Name == name {
			return &p.Spec.Triggers[i], &pl, nil
		}
	}
	return nil, nil, sdk.Errorf(sdk.ErrNotFound, "trigger", "pipeline %s/%s has no trigger %q", ns, pipeline, name)
}

// ListRecords lists the trigger records of a namespace, of one pipeline
// when pipeline is not empty, oldest first.
func (s *Service) ListRecords(ctx context.Context, ns, pipeline string, size int, token string) ([]resource.TriggerRecord, string, error) {
	var sel map[string]string
	if pipeline != "" {
		sel = map[string]string{"pipeline": pipeline}
	}
	out, next, err := rstore.List[resource.TriggerRecord](ctx, s.store, resource.KindTriggerRecord, ns, sel, size, token)
	if err != nil {
		return nil, "", fmt.Errorf("list trigger records: %w", err)
	}
	return out, next, nil
}

// GetRecord returns one trigger record.
func (s *Service) GetRecord(ctx context.Context, ns, name string) (*resource.TriggerRecord, error) {
	var r resource.TriggerRecord
	if err := s.get(ctx, resource.KindTriggerRecord, ns, name, &r); err != nil {
		return nil, fmt.Errorf("trigger record %s/%s: %w", ns, name, err)
	}
	return &r, nil
}

// --- documents in the database plugin (core/store) ---

func (s *Service) get(ctx context.Context, kind, ns, name string, obj resource.Object) error {
	return s.store.Get(ctx, kind, ns, name, obj)
}

func decode(r *database.Resource, obj resource.Object) error { return rstore.Decode(r, obj) }

func (s *Service) create(ctx context.Context, obj resource.Object) error {
	return s.store.Create(ctx, obj)
}

// update writes obj if its revision is still the stored one; otherwise it
// fails with sdk.ErrConflict.
func (s *Service) update(ctx context.Context, obj resource.Object) error {
	return s.store.Update(ctx, obj)
}
