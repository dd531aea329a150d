package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// fakeBackend is a test double of Backend made of function fields; a nil
// field answers with a plausible value. The real backend
// (core/orchestrator) is tested on its own; these tests are about HTTP.
type fakeBackend struct {
	apply     func(ApplyRequest) (*ApplyResult, error)
	validate  func(filename string, source []byte) error
	list      func(ns string, p PageRequest) (*Page[resource.Pipeline], error)
	get       func(ns, name string) (*resource.Pipeline, error)
	versions  func(ns, name string) ([]resource.PipelineVersion, error)
	delete    func(ns, name string) error
	startRun  func(ns, pipeline string, params map[string]string, t resource.TriggerInfo) (*resource.Run, error)
	listRuns  func(ns, pipeline string, p PageRequest) (*Page[resource.Run], error)
	getRun    func(ns, run string) (*resource.Run, error)
	cancel    func(ns, run, reason string) (*resource.Run, error)
	decide    func(ns, run, job string, approve bool, by, comment string) (*resource.Run, error)
	actionLog func(ns, run, job, action string) (io.ReadCloser, error)
}

func sampleRun(ns, name string) *resource.Run {
	return &resource.Run{Meta: resource.Meta{Kind: resource.KindRun, Namespace: ns, Name: name}, Pipeline: "build", Number: 7,
		Status: resource.StatusRunning, Jobs: []resource.JobStatus{{Name: "test", Status: resource.StatusRunning,
			Actions: []resource.ActionStatus{{Name: "unit", Type: "run", Status: resource.StatusRunning}}}}}
}

func (f *fakeBackend) ApplyPipeline(_ context.Context, req ApplyRequest) (*ApplyResult, error) {
	if f.apply != nil {
		return f.apply(req)
	}
	return &ApplyResult{Outcome: "created", Pipeline: &resource.Pipeline{Meta: resource.Meta{Name: "build"}, Version: 1}}, nil
}

func (f *fakeBackend) ValidatePipeline(_ context.Context, filename string, source []byte) error {
	if f.validate != nil {
		return f.validate(filename, source)
	}
	return nil
}

func (f *fakeBackend) ListPipelines(_ context.Context, ns string, p PageRequest) (*Page[resource.Pipeline], error) {
	if f.list != nil {
		return f.list(ns, p)
	}
	return &Page[resource.Pipeline]{}, nil
}

func (f *fakeBackend) GetPipeline(_ context.Context, ns, name string) (*resource.Pipeline, error) {
	if f.get != nil {
		return f.get(ns, name)
	}
	return &resource.Pipeline{Meta: resource.Meta{Kind: resource.KindPipeline, Namespace: ns, Name: name}, Version: 1}, nil
}

func (f *fakeBackend) ListPipelineVersions(_ context.Context, ns, name string) ([]resource.PipelineVersion, error) {
	if f.versions != nil {
		return f.versions(ns, name)
	}
	return nil, nil
}

func (f *fakeBackend) DeletePipeline(_ context.Context, ns, name string) error {
	if f.delete != nil {
		return f.delete(ns, name)
	}
	return nil
}

func (f *fakeBackend) StartRun(_ context.Context, ns, pipeline string, params map[string]string, t resource.TriggerInfo) (*resource.Run, error) {
	if f.startRun != nil {
		return f.startRun(ns, pipeline, params, t)
	}
	return sampleRun(ns, pipeline+"-1"), nil
}

func (f *fakeBackend) ListRuns(_ context.Context, ns, pipeline string, p PageRequest) (*Page[resource.Run], error) {
	if f.listRuns != nil {
		return f.listRuns(ns, pipeline, p)
	}
	return &Page[resource.Run]{}, nil
}

func (f *fakeBackend) GetRun(_ context.Context, ns, run string) (*resource.Run, error) {
	if f.getRun != nil {
		return f.getRun(ns, run)
	}
	if run == "missing-1" {
		return nil, sdk.Errorf(sdk.ErrNotFound, "run", "no run %s", run)
	}
	return sampleRun(ns, run), nil
}

func (f *fakeBackend) CancelRun(_ context.Context, ns, run, reason string) (*resource.Run, error) {
	if f.cancel != nil {
		return f.cancel(ns, run, reason)
	}
	return sampleRun(ns, run), nil
}

func (f *fakeBackend) Decide(_ context.Context, ns, run, job string, approve bool, by, comment string) (*resource.Run, error) {
	if f.decide != nil {
		return f.decide(ns, run, job, approve, by, comment)
	}
	return sampleRun(ns, run), nil
}

func (f *fakeBackend) ActionLog(_ context.Context, ns, run, job, action string) (io.ReadCloser, error) {
	if f.actionLog != nil {
		return f.actionLog(ns, run, job, action)
	}
	return io.NopCloser(strings.NewReader("hello\n")), nil
}

func (f *fakeBackend) Plugins(context.Context) []pluginhost.Status {
	return []pluginhost.Status{{Name: "engine-local", State: "running"}}
}

func (f *fakeBackend) Types(context.Context) (*TypeList, error) {
	return &TypeList{Items: []TypeInfo{{Category: "action", Name: "run", Plugin: "action-standard"}}}, nil
}

func (f *fakeBackend) ReloadPlugins(ctx context.Context) (*ReloadResult, error) {
	return &ReloadResult{SyncResult: pluginhost.SyncResult{Added: []string{}, Replaced: []string{}, Removed: []string{}}, Plugins: f.Plugins(ctx)}, nil
}

func (f *fakeBackend) Registries(context.Context) ([]Registry, error) {
	return []Registry{{Position: 1, Name: "public", Location: "https://example.org/registry", Names: []string{}, RootKeyIDs: []string{}, BuiltInRootKey: true, Threshold: 1}}, nil
}

func (f *fakeBackend) Workers(context.Context) ([]resource.Worker, error) {
	return []resource.Worker{{Meta: resource.Meta{Kind: resource.KindWorker, Name: "w1"}}}, nil
}

func (f *fakeBackend) DrainWorker(_ context.Context, name string, drain bool) (*resource.Worker, error) {
	return &resource.Worker{Meta: resource.Meta{Kind: resource.KindWorker, Name: name}, Spec: resource.WorkerSpec{Drain: drain}}, nil
}

// tokens is an Authenticator over a fixed table of tokens.
type tokens map[string]*authentication.Identity

func (t tokens) Authenticate(_ context.Context, token string) (*authentication.Identity, error) {
	if id, ok := t[token]; ok {
		return id, nil
	}
	return authentication.Unknown(), nil
}

// grants is an Authorizer that allows what is listed for an identity
// ("method resource") and records every question it was asked.
type grants struct {
	mu    sync.Mutex
	allow map[string]map[string]bool
	asked []string
}

func (g *grants) Authorize(_ context.Context, id *authentication.Identity, res, method string) (*authorization.Decision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := method + " " + res
	g.asked = append(g.asked, id.Name+" "+q)
	if g.allow[id.Name]["*"] || g.allow[id.Name][q] {
		return &authorization.Decision{Allowed: true, Rule: "test", Effect: authorization.EffectAllow}, nil
	}
	return &authorization.Decision{Allowed: false, Reason: "no rule allows it"}, nil
}

func (g *grants) lastAsked() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.asked) == 0 {
		return ""
	}
	return g.asked[len(g.asked)-1]
}

const pipelineFile = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: build
spec:
  jobs:
    - name: test
      actions:
        - run: go test ./...
`

type fixture struct {
	srv   *httptest.Server
	b     *fakeBackend
	authz *grants
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	b := &fakeBackend{}
	authn := tokens{
		"admin-token":   {Name: "alice", Status: authentication.StatusAuthenticated},
		"nobody-token":  {Name: "bob", Status: authentication.StatusAuthenticated},
		"expired-token": {Name: "carol", Status: authentication.StatusExpired},
		"revoked-token": {Name: "dave", Status: authentication.StatusRevoked},
	}
	g := &grants{allow: map[string]map[string]bool{"alice": {"*": true}}}
	srv := httptest.NewServer(New(b, authn, g, opts))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, b: b, authz: g}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) err(t *testing.T) ErrorBody {
	t.Helper()
	var e ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("status %d: body is not a JSON error (%v): %s", r.status, err, r.body)
	}
	return e.Error
}

func (f *fixture) do(t *testing.T, method, path, token, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// concrete fills a route's pattern with sample values, and returns the
// body to send and the resource string the route must be authorized on.
func concrete(rt Route) (path, body, res string) {
	path = strings.NewReplacer("{ns}", "default", "{name}", "build", "{run}", "build-7", "{job}", "test", "{action}", "unit").Replace(rt.Pattern)
	res = strings.NewReplacer("{ns}", "default", "{name}", "build", "{run}", "build/7", "{pipeline}", "*", "{file}", "default/build", "{credential}", "build").Replace(rt.Resource)
	switch rt.Body {
	case BodyPipeline:
		body = pipelineFile
	case BodyJSON:
		body = "{}"
	}
	return path, body, res
}

func TestEveryRouteIsAuthenticatedAndAuthorized(t *testing.T) {
	f := newFixture(t, Options{})
	for _, rt := range Routes() {
		path, body, res := concrete(rt)
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			if rt.Public {
				if r := f.do(t, rt.Method, path, "", body); r.status != http.StatusOK {
					t.Fatalf("public route without a token: status %d: %s", r.status, r.body)
				}
				return
			}
			if rt.Resource == "" || rt.Permission == "" {
				t.Fatalf("route has no resource or permission")
			}
			for _, token := range []string{"", "unknown-token", "expired-token", "revoked-token"} {
				r := f.do(t, rt.Method, path, token, body)
				if r.status != http.StatusUnauthorized {
					t.Fatalf("token %q: status %d, want 401: %s", token, r.status, r.body)
				}
				if e := r.err(t); e.Code != CodeUnauthenticated {
					t.Errorf("token %q: code %q", token, e.Code)
				}
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
			}
			r := f.do(t, rt.Method, path, "nobody-token", body)
			if r.status != http.StatusForbidden {
				t.Fatalf("denied: status %d, want 403: %s", r.status, r.body)
			}
			e := r.err(t)
			if e.Code != CodePermissionDenied || !strings.Contains(e.Message, rt.Permission+" "+res) {
				t.Errorf("403 = %+v, want it to name %q", e, rt.Permission+" "+res)
			}
			r = f.do(t, rt.Method, path, "admin-token", body)
			if r.status < 200 || r.status > 299 {
				t.Fatalf("allowed: status %d: %s", r.status, r.body)
			}
			if got, want := f.authz.lastAsked(), "alice "+rt.Permission+" "+res; got != want {
				t.Errorf("authorizer was asked %q, want %q", got, want)
			}
		})
	}
}

func TestMalformedAuthorizationHeader(t *testing.T) {
	f := newFixture(t, Options{})
	for _, h := range []string{"admin-token", "Basic admin-token", "Bearer ", "Bearer"} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/plugins", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", h, resp.StatusCode)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		field  string
	}{
		{sdk.Errorf(sdk.ErrNotFound, "", "pipeline default/build not found"), 404, CodeNotFound, ""},
		{fmt.Errorf("load: %w", sdk.Errorf(sdk.ErrInvalidArgument, "params.count", "not a number")), 400, CodeInvalidArgument, "params.count"},
		{sdk.ErrAlreadyExists, 409, CodeAlreadyExists, ""},
		{fmt.Errorf("update: %w", sdk.ErrConflict), 409, CodeConflict, ""},
		{sdk.Errorf(sdk.ErrFailedPrecondition, "job", "job deploy is not waiting for approval"), 409, CodeFailedPrecondition, "job"},
		{sdk.ErrPermissionDenied, 403, CodePermissionDenied, ""},
		{sdk.ErrResourceExhausted, 429, CodeResourceExhausted, ""},
		{sdk.ErrPluginStopped, 503, CodeUnavailable, ""},
		{sdk.ErrUnimplemented, 501, CodeUnimplemented, ""},
		{errors.New("disk on fire"), 500, CodeInternal, ""},
	}
	f := newFixture(t, Options{})
	for _, c := range cases {
		f.b.getRun = func(string, string) (*resource.Run, error) { return nil, c.err }
		r := f.do(t, http.MethodGet, "/api/v1/namespaces/default/runs/build-7", "admin-token", "")
		if r.status != c.status {
			t.Errorf("%v: status %d, want %d", c.err, r.status, c.status)
			continue
		}
		e := r.err(t)
		if e.Code != c.code || e.Field != c.field {
			t.Errorf("%v: error %+v, want code %q field %q", c.err, e, c.code, c.field)
		}
		if !strings.Contains(e.Message, strings.TrimPrefix(c.err.Error(), "load: ")) {
			t.Errorf("%v: message %q lost the backend's message", c.err, e.Message)
		}
	}
}

func TestValidationProblems(t *testing.T) {
	f := newFixture(t, Options{})
	problems := []Problem{
		{File: "ci.yaml", Line: 4, Field: "spec.jobs[0].name", Message: "required"},
		{File: "ci.yaml", Line: 9, Field: "spec.jobs[1].requires[0]", Message: "no job named lint"},
	}
	applied := false
	f.b.apply = func(ApplyRequest) (*ApplyResult, error) {
		applied = true
		return nil, fmt.Errorf("parse: %w", &ValidationError{Problems: problems})
	}
	f.b.validate = func(string, []byte) error { return &ValidationError{Problems: problems} }
	for _, path := range []string{"/api/v1/pipelines/apply?filename=ci.yaml", "/api/v1/pipelines/validate?filename=ci.yaml"} {
		r := f.do(t, http.MethodPost, path, "admin-token", pipelineFile)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: status %d: %s", path, r.status, r.body)
		}
		e := r.err(t)
		if e.Code != CodeValidationFailed || len(e.Problems) != 2 || e.Problems[1] != problems[1] {
			t.Errorf("%s: error %+v", path, e)
		}
	}
	if !applied {
		t.Errorf("apply did not reach the backend")
	}
}

func TestApplyReadsTheFileNamespaceAndName(t *testing.T) {
	f := newFixture(t, Options{})
	f.authz.allow["bob"] = map[string]bool{"write pipeline:team-a/build": true}
	var got ApplyRequest
	f.b.apply = func(req ApplyRequest) (*ApplyResult, error) {
		got = req
		return &ApplyResult{Outcome: "updated", Pipeline: &resource.Pipeline{Version: 2}}, nil
	}
	file := strings.Replace(pipelineFile, "  name: build\n", "  name: build\n  namespace: team-a\n", 1)
	r := f.do(t, http.MethodPost, "/api/v1/pipelines/apply?filename=p.yaml", "nobody-token", file)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if got.Filename != "p.yaml" || got.Namespace != "" || string(got.Source) != file {
		t.Errorf("backend got %+v", got)
	}
	// The namespace parameter overrides the file's, and is what is authorized.
	r = f.do(t, http.MethodPost, "/api/v1/pipelines/apply?namespace=team-b", "nobody-token", file)
	if r.status != http.StatusForbidden || !strings.Contains(r.err(t).Message, "pipeline:team-b/build") {
		t.Fatalf("override: status %d: %s", r.status, r.body)
	}
	// JSON files are read too.
	r = f.do(t, http.MethodPost, "/api/v1/pipelines/apply", "nobody-token", `{"metadata": {"name": "build", "namespace": "team-a"}}`)
	if r.status != http.StatusOK {
		t.Fatalf("JSON file: status %d: %s", r.status, r.body)
	}
	r = f.do(t, http.MethodPost, "/api/v1/pipelines/apply?namespace=a/b", "admin-token", file)
	if r.status != http.StatusBadRequest || r.err(t).Field != "namespace" {
		t.Fatalf("bad namespace parameter: status %d: %s", r.status, r.body)
	}
}

func TestApplyOfAnUnreadableFileOnlyValidates(t *testing.T) {
	f := newFixture(t, Options{})
	f.b.apply = func(ApplyRequest) (*ApplyResult, error) {
		t.Errorf("a file without a readable name was applied")
		return nil, errors.New("applied")
	}
	f.b.validate = func(filename string, _ []byte) error {
		return &ValidationError{Problems: []Problem{{File: filename, Line: 1, Message: "not YAML"}}}
	}
	r := f.do(t, http.MethodPost, "/api/v1/pipelines/apply?filename=x.yaml", "nobody-token", "metadata: [unclosed")
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if e := r.err(t); len(e.Problems) != 1 || e.Problems[0].File != "x.yaml" {
		t.Errorf("error %+v", e)
	}
	f.b.validate = nil
	r = f.do(t, http.MethodPost, "/api/v1/pipelines/apply", "admin-token", "metadata:\n  name: \"*\"\n")
	if r.status != http.StatusBadRequest || r.err(t).Field != "metadata.name" {
		t.Fatalf("a name that cannot be authorized: status %d: %s", r.status, r.body)
	}
}

func TestPaging(t *testing.T) {
	f := newFixture(t, Options{})
	var gotPage PageRequest
	var gotPipeline string
	f.b.listRuns = func(_, pipeline string, p PageRequest) (*Page[resource.Run], error) {
		gotPage, gotPipeline = p, pipeline
		return &Page[resource.Run]{Items: []resource.Run{*sampleRun("default", "build-7")}, NextPageToken: "next"}, nil
	}
	r := f.do(t, http.MethodGet, "/api/v1/namespaces/default/runs?pipeline=build&pageSize=20&pageToken=abc", "admin-token", "")
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if gotPage != (PageRequest{Size: 20, Token: "abc"}) || gotPipeline != "build" {
		t.Errorf("backend got page %+v pipeline %q", gotPage, gotPipeline)
	}
	if got := f.authz.lastAsked(); got != "alice read run:default/build/*" {
		t.Errorf("authorized %q", got)
	}
	var page Page[resource.Run]
	if err := json.Unmarshal(r.body, &page); err != nil || page.NextPageToken != "next" || len(page.Items) != 1 {
		t.Errorf("page = %+v (%v)", page, err)
	}
	for _, bad := range []string{"-1", "x", "1001"} {
		r := f.do(t, http.MethodGet, "/api/v1/namespaces/default/pipelines?pageSize="+bad, "admin-token", "")
		if r.status != http.StatusBadRequest || r.err(t).Field != "pageSize" {
			t.Errorf("pageSize=%s: status %d: %s", bad, r.status, r.body)
		}
	}
}

func TestBodyLimits(t *testing.T) {
	f := newFixture(t, Options{MaxPipelineBytes: 1 << 10, MaxJSONBytes: 64})
	applied := false
	f.b.apply = func(ApplyRequest) (*ApplyResult, error) { applied = true; return nil, errors.New("unreachable") }
	big := pipelineFile + "# " + strings.Repeat("x", 2<<10) + "\n"
	r := f.do(t, http.MethodPost, "/api/v1/pipelines/apply", "admin-token", big)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if e := r.err(t); e.Code != CodeRequestTooLarge || !strings.Contains(e.Message, "1 KiB") {
		t.Errorf("error %+v", e)
	}
	if applied {
		t.Errorf("a file over the limit was applied")
	}
	r = f.do(t, http.MethodPost, "/api/v1/namespaces/default/pipelines/build/runs", "admin-token",
		`{"params": {"x": "`+strings.Repeat("y", 100)+`"}}`)
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.err(t).Message, "64 bytes") {
		t.Fatalf("JSON body: status %d: %s", r.status, r.body)
	}
}

func TestJSONBodies(t *testing.T) {
	f := newFixture(t, Options{})
	var gotParams map[string]string
	var gotTrigger resource.TriggerInfo
	f.b.startRun = func(ns, p string, params map[string]string, tr resource.TriggerInfo) (*resource.Run, error) {
		gotParams, gotTrigger = params, tr
		return sampleRun(ns, p+"-1"), nil
	}
	r := f.do(t, http.MethodPost, "/api/v1/namespaces/default/pipelines/build/runs", "admin-token", `{"params": {"env": "prod"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if gotParams["env"] != "prod" || gotTrigger.Type != "manual" || gotTrigger.By != "alice" {
		t.Errorf("backend got params %v trigger %+v", gotParams, gotTrigger)
	}
	bad := []struct{ body, field string }{
		{`{"params": {"count": 3}}`, "params.count"},
		{`{"params": "env=prod"}`, "params"},
		{`{"parms": {}}`, "parms"},
		{`{"params": {`, "body"},
		{`[1, 2]`, "body"},
		{`{} {}`, "body"},
	}
	for _, c := range bad {
		r := f.do(t, http.MethodPost, "/api/v1/namespaces/default/pipelines/build/runs", "admin-token", c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d: %s", c.body, r.status, r.body)
			continue
		}
		if e := r.err(t); e.Code != CodeInvalidArgument || e.Field != c.field {
			t.Errorf("%s: error %+v, want field %q", c.body, e, c.field)
		}
	}
	var decided struct {
		job, by, comment string
		approve          bool
	}
	f.b.decide = func(ns, run, job string, approve bool, by, comment string) (*resource.Run, error) {
		decided.job, decided.approve, decided.by, decided.comment = job, approve, by, comment
		return sampleRun(ns, run), nil
	}
	r = f.do(t, http.MethodPost, "/api/v1/namespaces/default/runs/build-7/reject", "admin-token", `{"job": "deploy", "comment": "not today"}`)
	if r.status != http.StatusOK || decided.job != "deploy" || decided.approve || decided.by != "alice" || decided.comment != "not today" {
		t.Errorf("reject: status %d, backend got %+v", r.status, decided)
	}
	r = f.do(t, http.MethodPost, "/api/v1/namespaces/default/runs/build-7/approve", "admin-token", "")
	if r.status != http.StatusOK || decided.job != "" || !decided.approve {
		t.Errorf("approve with no body: status %d, backend got %+v", r.status, decided)
	}
}

func TestRunsJobsActionsAndLogs(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodGet, "/api/v1/namespaces/default/runs/build-7/jobs/test/actions", "admin-token", "")
	var actions Page[resource.ActionStatus]
	if err := json.Unmarshal(r.body, &actions); err != nil || len(actions.Items) != 1 || actions.Items[0].Name != "unit" {
		t.Fatalf("actions: status %d: %s", r.status, r.body)
	}
	r = f.do(t, http.MethodGet, "/api/v1/namespaces/default/runs/build-7/jobs/nope/actions", "admin-token", "")
	if r.status != http.StatusNotFound || r.err(t).Field != "job" {
		t.Errorf("unknown job: status %d: %s", r.status, r.body)
	}
	var asked []string
	f.b.actionLog = func(ns, run, job, action string) (io.ReadCloser, error) {
		asked = []string{ns, run, job, action}
		return io.NopCloser(strings.NewReader("line 1\nline 2\n")), nil
	}
	r = f.do(t, http.MethodGet, "/api/v1/namespaces/default/runs/build-7/jobs/test/actions/unit/log", "admin-token", "")
	if r.status != http.StatusOK || string(r.body) != "line 1\nline 2\n" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("log: status %d type %q: %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	if strings.Join(asked, " ") != "default build-7 test unit" {
		t.Errorf("backend asked for %v", asked)
	}
	var reason string
	f.b.cancel = func(ns, run, why string) (*resource.Run, error) { reason = why; return sampleRun(ns, run), nil }
	f.do(t, http.MethodPost, "/api/v1/namespaces/default/runs/build-7/cancel", "admin-token", "")
	if reason != "cancelled by alice" {
		t.Errorf("cancel reason %q", reason)
	}
}

func TestBadPathNames(t *testing.T) {
	f := newFixture(t, Options{})
	// %2F decodes to a slash inside one segment: it must not reach a
	// resource string.
	r := f.do(t, http.MethodGet, "/api/v1/namespaces/default/pipelines/a%2Fb", "admin-token", "")
	if r.status != http.StatusBadRequest || r.err(t).Field != "name" {
		t.Errorf("status %d: %s", r.status, r.body)
	}
	r = f.do(t, http.MethodGet, "/api/v1/namespaces/%2A/pipelines", "admin-token", "")
	if r.status != http.StatusBadRequest || r.err(t).Field != "ns" {
		t.Errorf("status %d: %s", r.status, r.body)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodGet, "/api/v1/nope", "admin-token", "")
	if r.status != http.StatusNotFound || r.err(t).Code != CodeNotFound {
		t.Errorf("unknown route: status %d: %s", r.status, r.body)
	}
	r = f.do(t, http.MethodPut, "/api/v1/namespaces/default/pipelines/build", "admin-token", "")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "DELETE, GET" {
		t.Errorf("wrong method: status %d Allow %q: %s", r.status, r.header.Get("Allow"), r.body)
	}
}

func TestRunResource(t *testing.T) {
	for in, want := range map[string]string{
		"deploy-42": "deploy/42", "my-app-7": "my-app/7", "plain": "plain", "x-": "x-", "-3": "-3", "a-b": "a-b",
	} {
		if got := runResource(in); got != want {
			t.Errorf("runResource(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"params": {"a": "b"}}`, `{"params": {"a": 1}}`, `[`, `null`, `{"job": "x", "comment": 3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req StartRunRequest
		if err := decodeJSON(b, &req, "params"); err != nil && !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Fatalf("error %v is not invalid argument", err)
		}
	})
}
