package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/api/apitest"
	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
)

const file = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: build
spec:
  jobs:
    - name: test
      actions:
        - name: unit
          run: go test ./...
`

// serve runs the real API over the in-memory backend on loopback.
func serve(t *testing.T) (*apitest.Backend, string) {
	t.Helper()
	b := apitest.NewBackend()
	authn := apitest.Tokens{
		"admin":  {Name: "alice", Status: authentication.StatusAuthenticated},
		"reader": {Name: "bob", Status: authentication.StatusAuthenticated},
	}
	authz := apitest.Grants{"alice": {"*"}, "bob": {"read"}}
	srv := httptest.NewServer(api.New(b, authn, authz, api.Options{Version: "test"}))
	t.Cleanup(srv.Close)
	return b, srv.URL
}

func mustNew(t *testing.T, server, token string) *Client {
	t.Helper()
	c, err := New(server, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPipelineRoundTrip(t *testing.T) {
	ctx := context.Background()
	_, url := serve(t)
	c := mustNew(t, url, "admin")
	res, err := c.ApplyPipeline(ctx, api.ApplyRequest{Filename: "build.yaml", Source: []byte(file)})
	if err != nil || res.Outcome != "created" || res.Pipeline.Version != 1 {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	res, err = c.ApplyPipeline(ctx, api.ApplyRequest{Filename: "build.yaml", Source: []byte(file)})
	if err != nil || res.Outcome != "unchanged" {
		t.Fatalf("apply again = %+v, %v", res, err)
	}
	res, err = c.ApplyPipeline(ctx, api.ApplyRequest{Filename: "build.yaml", Source: []byte(strings.Replace(file, "./...", "./core/...", 1))})
	if err != nil || res.Outcome != "updated" || res.Pipeline.Version != 2 {
		t.Fatalf("apply a change = %+v, %v", res, err)
	}
	vs, err := c.ListPipelineVersions(ctx, "default", "build")
	if err != nil || len(vs) != 2 || vs[1].Version != 2 {
		t.Fatalf("versions = %+v, %v", vs, err)
	}
	p, err := c.GetPipeline(ctx, "default", "build")
	if err != nil || p.Name != "build" || p.Version != 2 {
		t.Fatalf("get = %+v, %v", p, err)
	}
	page, err := c.ListPipelines(ctx, "default", api.PageRequest{})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("list = %+v, %v", page, err)
	}
	if err := c.DeletePipeline(ctx, "default", "build"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPipeline(ctx, "default", "build")
	var se *wire.Error
	if !errors.Is(err, sdk.ErrNotFound) || !errors.As(err, &se) || !strings.Contains(se.Message, "no pipeline default/build") {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestValidationErrorsComeBackWithTheirProblems(t *testing.T) {
	_, url := serve(t)
	c := mustNew(t, url, "admin")
	bad := "apiVersion: palvella.dev/v1\nmetadata:\n  name: build\nspec:\n  jobs:\n    - actions: []\n"
	for _, err := range []error{
		c.ValidatePipeline(context.Background(), "bad.yaml", []byte(bad)),
		func() error {
			_, err := c.ApplyPipeline(context.Background(), api.ApplyRequest{Filename: "bad.yaml", Source: []byte(bad)})
			return err
		}(),
	} {
		var ve *api.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].String() != "bad.yaml:6: spec.jobs[0].name: required" {
			t.Errorf("error = %v, want the problem", err)
		}
	}
	if err := c.ValidatePipeline(context.Background(), "ok.yaml", []byte(file)); err != nil {
		t.Errorf("valid file: %v", err)
	}
}

func TestRunsRoundTrip(t *testing.T) {
	ctx := context.Background()
	b, url := serve(t)
	c := mustNew(t, url, "admin")
	if _, err := c.ApplyPipeline(ctx, api.ApplyRequest{Source: []byte(file)}); err != nil {
		t.Fatal(err)
	}
	run, err := c.StartRun(ctx, "default", "build", map[string]string{"env": "prod"})
	if err != nil || run.Name != "build-1" || run.Params["env"] != "prod" || run.Trigger.By != "alice" {
		t.Fatalf("start = %+v, %v", run, err)
	}
	_, err = c.StartRun(ctx, "default", "build", map[string]string{"bad": "x"})
	var se *wire.Error
	if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &se) || se.Field != "params.bad" {
		t.Fatalf("bad param: %v", err)
	}
	for range 2 {
		if _, err := c.StartRun(ctx, "default", "build", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Paging through every run, two at a time.
	var names []string
	page := api.PageRequest{Size: 2}
	for {
		p, err := c.ListRuns(ctx, "default", "build", page)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Items {
			names = append(names, r.Name)
		}
		if p.NextPageToken == "" {
			break
		}
		page.Token = p.NextPageToken
	}
	if len(names) != 3 {
		t.Fatalf("paged runs = %v", names)
	}

	if err := b.Update("default", "build-1", func(r *resource.Run) { r.Jobs[0].Status = resource.StatusWaiting }); err != nil {
		t.Fatal(err)
	}
	run, err = c.Decide(ctx, "default", "build-1", "", true, "ship it")
	if err != nil || run.Jobs[0].Status != resource.StatusRunning {
		t.Fatalf("approve = %+v, %v", run, err)
	}
	if _, err := c.Decide(ctx, "default", "build-1", "test", false, ""); !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("reject a job that is not waiting: %v", err)
	}
	jobs, err := c.ListJobs(ctx, "default", "build-1")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs = %+v, %v", jobs, err)
	}
	actions, err := c.ListActions(ctx, "default", "build-1", "test")
	if err != nil || len(actions) != 1 || actions[0].Name != "unit" {
		t.Fatalf("actions = %+v, %v", actions, err)
	}
	b.SetLog("default", "build-1", "test", "unit", "ok  \tpalvella\n")
	rc, err := c.ActionLog(ctx, "default", "build-1", "test", "unit")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := io.ReadAll(rc)
	rc.Close()
	if string(log) != "ok  \tpalvella\n" {
		t.Errorf("log = %q", log)
	}
	run, err = c.CancelRun(ctx, "default", "build-2", "")
	if err != nil || run.Status != resource.StatusCancelled || run.Reason != "cancelled by alice" {
		t.Fatalf("cancel = %+v, %v", run, err)
	}
	if _, err := c.CancelRun(ctx, "default", "build-2", ""); !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("cancel twice: %v", err)
	}
	plugins, err := c.Plugins(ctx)
	if err != nil || len(plugins) != 1 {
		t.Fatalf("plugins = %+v, %v", plugins, err)
	}
}

func TestAuthErrors(t *testing.T) {
	ctx := context.Background()
	_, url := serve(t)
	if _, err := mustNew(t, url, "").GetRun(ctx, "default", "x-1"); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Errorf("no token: %v", err)
	}
	if _, err := mustNew(t, url, "wrong").Plugins(ctx); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Errorf("wrong token: %v", err)
	}
	_, err := mustNew(t, url, "reader").StartRun(ctx, "default", "build", nil)
	if !errors.Is(err, sdk.ErrPermissionDenied) || !strings.Contains(err.Error(), "run pipeline:default/build") {
		t.Errorf("reader starting a run: %v", err)
	}
	h, err := mustNew(t, url, "").Health(ctx)
	if err != nil || h.Status != "ok" || h.Version != "test" {
		t.Errorf("health = %+v, %v", h, err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = mustNew(t, "http://"+addr, "admin").Health(context.Background())
	var u *UnreachableError
	if !errors.As(err, &u) || u.Server != "http://"+addr || !IsUnreachable(err) {
		t.Fatalf("error = %v, want UnreachableError", err)
	}
}

func TestNotAPalvellaServer(t *testing.T) {
	srv := httptest.NewServer(nil) // answers 404 page not found, in plain text
	defer srv.Close()
	_, err := mustNew(t, srv.URL, "admin").GetRun(context.Background(), "default", "x-1")
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error = %v", err)
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, s := range []string{"", "127.0.0.1:7700", "ftp://x", "http://"} {
		if _, err := New(s, ""); !errors.Is(err, sdk.ErrInvalidArgument) {
			t.Errorf("New(%q) = %v", s, err)
		}
	}
}
