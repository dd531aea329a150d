// Package apitest helps test programs that use Palvella's HTTP API: an
// in-memory Backend that keeps pipelines, versions and runs (but runs
// nothing: a test moves runs along with Update and SetLog), and simple
// Authenticator and Authorizer implementations.
//
// It is a stand-in for the real backend (core/orchestrator) in tests of
// API clients such as core/client and the CLI, not a second implementation
// of Palvella's semantics.
package apitest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"gopkg.in/yaml.v3"
)

// Backend is an in-memory api.Backend.
type Backend struct {
	mu        sync.Mutex
	pipelines map[string]*resource.Pipeline
	versions  map[string][]resource.PipelineVersion
	runs      map[string]*resource.Run
	logs      map[string]string
}

var _ api.Backend = (*Backend)(nil)

// NewBackend returns an empty Backend.
func NewBackend() *Backend {
	return &Backend{pipelines: map[string]*resource.Pipeline{}, versions: map[string][]resource.PipelineVersion{},
		runs: map[string]*resource.Run{}, logs: map[string]string{}}
}

type file struct {
	Metadata struct {
		Name        string `yaml:"name" json:"name"`
		Namespace   string `yaml:"namespace" json:"namespace,omitempty"`
		Description string `yaml:"description" json:"description,omitempty"`
	} `yaml:"metadata" json:"metadata"`
	Spec struct {
		Jobs []struct {
			Name    string `yaml:"name" json:"name"`
			Actions []struct {
				Name string `yaml:"name" json:"name"`
				Type string `yaml:"type" json:"type,omitempty"`
			} `yaml:"actions" json:"actions"`
		} `yaml:"jobs" json:"jobs"`
	} `yaml:"spec" json:"spec"`
}

// parse reads the little of a pipeline file this backend needs. Problems:
// YAML that does not parse, a missing metadata.name, a job without a name.
func parse(filename string, src []byte) (*file, error) {
	var f file
	var node yaml.Node
	if err := yaml.Unmarshal(src, &node); err != nil {
		return nil, &api.ValidationError{Problems: []api.Problem{{File: filename, Line: 1, Message: "not valid YAML: " + err.Error()}}}
	}
	if err := node.Decode(&f); err != nil {
		return nil, &api.ValidationError{Problems: []api.Problem{{File: filename, Line: 1, Message: err.Error()}}}
	}
	var problems []api.Problem
	if f.Metadata.Name == "" {
		problems = append(problems, api.Problem{File: filename, Line: 1, Field: "metadata.name", Message: "required"})
	}
	for i, j := range f.Spec.Jobs {
		if j.Name == "" {
			problems = append(problems, api.Problem{File: filename, Line: lineOf(src, "jobs:") + 1 + i, Field: fmt.Sprintf("spec.jobs[%d].name", i), Message: "required"})
		}
	}
	if problems != nil {
		return nil, &api.ValidationError{Problems: problems}
	}
	if f.Metadata.Namespace == "" {
		f.Metadata.Namespace = "default"
	}
	return &f, nil
}

func lineOf(src []byte, s string) int {
	i := bytes.Index(src, []byte(s))
	if i < 0 {
		return 1
	}
	return bytes.Count(src[:i], []byte("\n")) + 1
}

// ApplyPipeline stores a new version when the file changed.
func (b *Backend) ApplyPipeline(_ context.Context, req api.ApplyRequest) (*api.ApplyResult, error) {
	f, err := parse(req.Filename, req.Source)
	if err != nil {
		return nil, err
	}
	if req.Namespace != "" {
		f.Metadata.Namespace = req.Namespace
	}
	spec, err := json.Marshal(f.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode the spec: %w", err)
	}
	sum := sha256.Sum256(req.Source) // the real backend hashes the normalized spec
	hash := hex.EncodeToString(sum[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	key := f.Metadata.Namespace + "/" + f.Metadata.Name
	now := time.Now().UTC()
	p, ok := b.pipelines[key]
	outcome := "created"
	switch {
	case !ok:
		p = &resource.Pipeline{Meta: resource.Meta{Kind: resource.KindPipeline, Namespace: f.Metadata.Namespace, Name: f.Metadata.Name, CreatedAt: now}}
		b.pipelines[key] = p
	case p.Hash == hash:
		cp := *p
		return &api.ApplyResult{Pipeline: &cp, Outcome: "unchanged"}, nil
	default:
		outcome = "updated"
	}
	p.Version++
	p.Revision++
	p.Hash, p.Spec, p.Description, p.UpdatedAt = hash, spec, f.Metadata.Description, now
	b.versions[key] = append(b.versions[key], resource.PipelineVersion{
		Meta:     resource.Meta{Kind: resource.KindPipelineVersion, Namespace: p.Namespace, Name: p.Name + ".v" + strconv.Itoa(p.Version), CreatedAt: now, UpdatedAt: now},
		Pipeline: p.Name, Version: p.Version, Hash: hash, Spec: spec, Source: string(req.Source),
	})
	cp := *p
	return &api.ApplyResult{Pipeline: &cp, Outcome: outcome}, nil
}

// ValidatePipeline checks a file.
func (b *Backend) ValidatePipeline(_ context.Context, filename string, source []byte) error {
	_, err := parse(filename, source)
	return err
}

// ListPipelines pages through the pipelines of a namespace by name; the
// page token is the last name of the previous page.
func (b *Backend) ListPipelines(_ context.Context, namespace string, page api.PageRequest) (*api.Page[resource.Pipeline], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []resource.Pipeline
	for _, p := range b.pipelines {
		if p.Namespace == namespace && p.Name > page.Token {
			all = append(all, *p)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	out := &api.Page[resource.Pipeline]{Items: all}
	if page.Size > 0 && len(all) > page.Size {
		out.Items = all[:page.Size]
		out.NextPageToken = all[page.Size-1].Name
	}
	return out, nil
}

// GetPipeline returns a pipeline.
func (b *Backend) GetPipeline(_ context.Context, namespace, name string) (*resource.Pipeline, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pipelines[namespace+"/"+name]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "no pipeline %s/%s", namespace, name)
	}
	cp := *p
	return &cp, nil
}

// ListPipelineVersions returns the versions of a pipeline, oldest first.
func (b *Backend) ListPipelineVersions(ctx context.Context, namespace, name string) ([]resource.PipelineVersion, error) {
	if _, err := b.GetPipeline(ctx, namespace, name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]resource.PipelineVersion(nil), b.versions[namespace+"/"+name]...), nil
}

// DeletePipeline deletes a pipeline and its versions.
func (b *Backend) DeletePipeline(ctx context.Context, namespace, name string) error {
	if _, err := b.GetPipeline(ctx, namespace, name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pipelines, namespace+"/"+name)
	delete(b.versions, namespace+"/"+name)
	return nil
}

// StartRun creates a queued run with the pipeline's jobs and actions.
// Params must be declared by nothing: every name is accepted but "bad",
// which is refused as a param of the wrong type.
func (b *Backend) StartRun(_ context.Context, namespace, pipeline string, params map[string]string, trigger resource.TriggerInfo) (*resource.Run, error) {
	if _, ok := params["bad"]; ok {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.bad", "must be a number")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pipelines[namespace+"/"+pipeline]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "no pipeline %s/%s", namespace, pipeline)
	}
	var f file
	if err := json.Unmarshal(p.Spec, &f.Spec); err != nil {
		return nil, fmt.Errorf("decode the spec: %w", err)
	}
	p.LastRun++
	now := time.Now().UTC()
	run := &resource.Run{Meta: resource.Meta{Kind: resource.KindRun, Namespace: namespace, Name: fmt.Sprintf("%s-%d", pipeline, p.LastRun), CreatedAt: now, UpdatedAt: now},
		Pipeline: pipeline, PipelineVersion: p.Version, Number: p.LastRun, Params: map[string]any{}, Trigger: trigger, Jobs: []resource.JobStatus{}}
	for k, v := range params {
		run.Params[k] = v
	}
	resource.SetStatus(&run.Status, &run.Transitions, resource.StatusQueued, "", now)
	for _, j := range f.Spec.Jobs {
		js := resource.JobStatus{Name: j.Name, Status: resource.StatusPending, Actions: []resource.ActionStatus{}}
		for i, a := range j.Actions {
			name, typ := a.Name, a.Type
			if name == "" {
				name = strconv.Itoa(i + 1)
			}
			if typ == "" {
				typ = "run"
			}
			js.Actions = append(js.Actions, resource.ActionStatus{Name: name, Type: typ, Status: resource.StatusPending})
		}
		run.Jobs = append(run.Jobs, js)
	}
	b.runs[namespace+"/"+run.Name] = run
	return copyRun(run), nil
}

func copyRun(r *resource.Run) *resource.Run {
	data, _ := json.Marshal(r) // a Run always encodes
	var cp resource.Run
	_ = json.Unmarshal(data, &cp)
	return &cp
}

// ListRuns pages through runs, newest first; the page token is the
// number of the last run of the previous page.
func (b *Backend) ListRuns(_ context.Context, namespace, pipeline string, page api.PageRequest) (*api.Page[resource.Run], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []resource.Run
	for _, r := range b.runs {
		if r.Namespace == namespace && (pipeline == "" || r.Pipeline == pipeline) {
			all = append(all, *copyRun(r))
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.After(all[j].CreatedAt)
		}
		return all[i].Name > all[j].Name
	})
	start := 0
	if page.Token != "" {
		n, err := strconv.Atoi(page.Token)
		if err != nil {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "pageToken", "not a page token of this server")
		}
		start = n
	}
	if start > len(all) {
		start = len(all)
	}
	out := &api.Page[resource.Run]{Items: all[start:]}
	if page.Size > 0 && len(out.Items) > page.Size {
		out.Items = out.Items[:page.Size]
		out.NextPageToken = strconv.Itoa(start + page.Size)
	}
	return out, nil
}

// GetRun returns a run.
func (b *Backend) GetRun(_ context.Context, namespace, run string) (*resource.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runs[namespace+"/"+run]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "no run %s/%s", namespace, run)
	}
	return copyRun(r), nil
}

// Update changes a run in place, as the scheduler would.
func (b *Backend) Update(namespace, run string, change func(*resource.Run)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runs[namespace+"/"+run]
	if !ok {
		return sdk.Errorf(sdk.ErrNotFound, "", "no run %s/%s", namespace, run)
	}
	change(r)
	return nil
}

// SetLog sets the log of an action.
func (b *Backend) SetLog(namespace, run, job, action, log string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logs[strings.Join([]string{namespace, run, job, action}, "/")] = log
}

// CancelRun cancels a run that has not ended.
func (b *Backend) CancelRun(_ context.Context, namespace, run, reason string) (*resource.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runs[namespace+"/"+run]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "no run %s/%s", namespace, run)
	}
	if r.Status.Terminal() {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "run %s/%s has already ended (%s)", namespace, run, r.Status)
	}
	resource.SetStatus(&r.Status, &r.Transitions, resource.StatusCancelled, reason, time.Now().UTC())
	r.Reason = reason
	return copyRun(r), nil
}

// Decide releases a waiting job: approved, it runs again; rejected, it
// fails.
func (b *Backend) Decide(_ context.Context, namespace, run, job string, approve bool, by, comment string) (*resource.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runs[namespace+"/"+run]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "no run %s/%s", namespace, run)
	}
	var waiting []*resource.JobStatus
	for i := range r.Jobs {
		if r.Jobs[i].Status == resource.StatusWaiting && (job == "" || r.Jobs[i].Name == job) {
			waiting = append(waiting, &r.Jobs[i])
		}
	}
	switch {
	case job != "" && r.Job(job) == nil:
		return nil, sdk.Errorf(sdk.ErrNotFound, "job", "run %s has no job %q", run, job)
	case len(waiting) == 0:
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "job", "no job of run %s is waiting for approval", run)
	case len(waiting) > 1:
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "job", "%d jobs of run %s are waiting: name one", len(waiting), run)
	}
	now, to := time.Now().UTC(), resource.StatusRunning
	if !approve {
		to = resource.StatusFailure
	}
	reason := fmt.Sprintf("approved by %s", by)
	if !approve {
		reason = fmt.Sprintf("rejected by %s", by)
	}
	if comment != "" {
		reason += ": " + comment
	}
	resource.SetStatus(&waiting[0].Status, &waiting[0].Transitions, to, reason, now)
	return copyRun(r), nil
}

// ActionLog returns an action's log.
func (b *Backend) ActionLog(_ context.Context, namespace, run, job, action string) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	log, ok := b.logs[strings.Join([]string{namespace, run, job, action}, "/")]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "no log of action %s of job %s of run %s/%s", action, job, namespace, run)
	}
	return io.NopCloser(strings.NewReader(log)), nil
}

// Plugins reports one builtin plugin.
func (b *Backend) Plugins(context.Context) []pluginhost.Status {
	return []pluginhost.Status{{Name: "engine-local", Source: pluginhost.SourceBuiltin, Version: "0.1.0", State: "running"}}
}

// Types lists the local engine's type.
func (b *Backend) Types(context.Context) (*api.TypeList, error) {
	return &api.TypeList{Items: []api.TypeInfo{{Category: "engine", Name: "local", Plugin: "engine-local"}}}, nil
}

// ReloadPlugins changes nothing and reports the plugins.
func (b *Backend) ReloadPlugins(ctx context.Context) (*api.ReloadResult, error) {
	return &api.ReloadResult{SyncResult: pluginhost.SyncResult{Added: []string{}, Replaced: []string{}, Removed: []string{}}, Plugins: b.Plugins(ctx)}, nil
}

// Registries lists one registry, the public one.
func (b *Backend) Registries(context.Context) ([]api.Registry, error) {
	return []api.Registry{{Position: 1, Name: "public", Location: "https://example.org/registry", Names: []string{}, RootKeyIDs: []string{}, BuiltInRootKey: true, Threshold: 1}}, nil
}

// Workers lists one worker.
func (b *Backend) Workers(context.Context) ([]resource.Worker, error) {
	return []resource.Worker{{Meta: resource.Meta{Kind: resource.KindWorker, Name: "w1"}, Status: resource.WorkerStatus{Jobs: []string{}}}}, nil
}

// DrainWorker drains nothing and answers as if it had.
func (b *Backend) DrainWorker(_ context.Context, name string, drain bool) (*resource.Worker, error) {
	return &resource.Worker{Meta: resource.Meta{Kind: resource.KindWorker, Name: name}, Spec: resource.WorkerSpec{Drain: drain}}, nil
}

// Tokens is an Authenticator over a fixed table of tokens; any other token
// is unknown.
type Tokens map[string]*authentication.Identity

// Authenticate looks the token up.
func (t Tokens) Authenticate(_ context.Context, token string) (*authentication.Identity, error) {
	if id, ok := t[token]; ok {
		return id, nil
	}
	return authentication.Unknown(), nil
}

// Grants is an Authorizer: the identity named by each key may use the
// methods listed for it ("*" for all) on every resource.
type Grants map[string][]string

// Authorize allows what is granted and denies the rest.
func (g Grants) Authorize(_ context.Context, id *authentication.Identity, res, method string) (*authorization.Decision, error) {
	for _, m := range g[id.Name] {
		if m == "*" || m == method {
			return &authorization.Decision{Allowed: true, Rule: "apitest", Effect: authorization.EffectAllow}, nil
		}
	}
	return &authorization.Decision{Reason: "not granted"}, nil
}
