// Package client is a Go client of Palvella's HTTP API (core/api). The
// CLI uses it; so can any other program.
//
// Errors the server returns come back as *wire.Error with the server's
// code, message and field, for which errors.Is holds with the sentinel of
// their code (sdk.ErrNotFound, which is types.ErrNotFound, ...); a pipeline
// file with problems comes back as *wire.ValidationError. A server that
// does not answer gives an *UnreachableError.
//
// The client depends on core/api/wire and plugin-sdk/types only: a program
// that uses it does not pull in the server or the plugin machinery.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugin-sdk/types"
)

// Client talks to one Palvella server.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// New returns a client of the server at server (such as
// "http://127.0.0.1:7700") that authenticates with token.
func New(server, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &wire.Error{Kind: types.ErrInvalidArgument, Field: "server", Message: fmt.Sprintf("%q is not an http:// or https:// URL", server)}
	}
	c := &Client{base: u, token: token, http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Server returns the server's URL.
func (c *Client) Server() string { return c.base.String() }

// UnreachableError is returned when no server answers at the client's URL.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no Palvella server at %s: %v", e.Server, e.Err)
}

// Unwrap returns the transport error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Health asks whether the server is up. It needs no token.
func (c *Client) Health(ctx context.Context) (*wire.Health, error) {
	var h wire.Health
	if err := c.do(ctx, http.MethodGet, "/health", nil, "", nil, &h); err != nil {
		return nil, fmt.Errorf("check the server's health: %w", err)
	}
	return &h, nil
}

// ApplyPipeline applies a pipeline file. A non-empty req.Namespace
// overrides the file's metadata.namespace.
func (c *Client) ApplyPipeline(ctx context.Context, req wire.ApplyRequest) (*wire.ApplyResult, error) {
	q := url.Values{}
	if req.Filename != "" {
		q.Set("filename", req.Filename)
	}
	if req.Namespace != "" {
		q.Set("namespace", req.Namespace)
	}
	var res wire.ApplyResult
	if err := c.do(ctx, http.MethodPost, "/pipelines/apply", q, "application/yaml", req.Source, &res); err != nil {
		return nil, fmt.Errorf("apply %q: %w", req.Filename, err)
	}
	return &res, nil
}

// ValidatePipeline checks a pipeline file without applying it. A file
// with problems gives an *wire.ValidationError.
func (c *Client) ValidatePipeline(ctx context.Context, filename string, source []byte) error {
	q := url.Values{}
	if filename != "" {
		q.Set("filename", filename)
	}
	if err := c.do(ctx, http.MethodPost, "/pipelines/validate", q, "application/yaml", source, nil); err != nil {
		return fmt.Errorf("validate %q: %w", filename, err)
	}
	return nil
}

// ListPipelines returns one page of the pipelines of a namespace.
func (c *Client) ListPipelines(ctx context.Context, namespace string, page wire.PageRequest) (*wire.Page[resource.Pipeline], error) {
	var p wire.Page[resource.Pipeline]
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "pipelines"), pageQuery(page), "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the pipelines of %q: %w", namespace, err)
	}
	return &p, nil
}

// GetPipeline returns a pipeline.
func (c *Client) GetPipeline(ctx context.Context, namespace, name string) (*resource.Pipeline, error) {
	var p resource.Pipeline
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "pipelines", name), nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("get pipeline %q: %w", namespace+"/"+name, err)
	}
	return &p, nil
}

// ListPipelineVersions returns every applied version of a pipeline.
func (c *Client) ListPipelineVersions(ctx context.Context, namespace, name string) ([]resource.PipelineVersion, error) {
	var p wire.Page[resource.PipelineVersion]
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "pipelines", name, "versions"), nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the versions of pipeline %q: %w", namespace+"/"+name, err)
	}
	return p.Items, nil
}

// DeletePipeline deletes a pipeline.
func (c *Client) DeletePipeline(ctx context.Context, namespace, name string) error {
	if err := c.do(ctx, http.MethodDelete, nsPath(namespace, "pipelines", name), nil, "", nil, nil); err != nil {
		return fmt.Errorf("delete pipeline %q: %w", namespace+"/"+name, err)
	}
	return nil
}

// StartRun starts a run of a pipeline with params as strings (`-p k=v`);
// the server coerces them to their declared types.
func (c *Client) StartRun(ctx context.Context, namespace, pipeline string, params map[string]string) (*resource.Run, error) {
	body, err := json.Marshal(wire.StartRunRequest{Params: params})
	if err != nil {
		return nil, fmt.Errorf("start a run of %q: %w", namespace+"/"+pipeline, err)
	}
	var run resource.Run
	if err := c.do(ctx, http.MethodPost, nsPath(namespace, "pipelines", pipeline, "runs"), nil, "application/json", body, &run); err != nil {
		return nil, err // the server's message says which pipeline
	}
	return &run, nil
}

// ListRuns returns one page of the runs of a namespace, of one pipeline
// when pipeline is not empty.
func (c *Client) ListRuns(ctx context.Context, namespace, pipeline string, page wire.PageRequest) (*wire.Page[resource.Run], error) {
	q := pageQuery(page)
	if pipeline != "" {
		q.Set("pipeline", pipeline)
	}
	var p wire.Page[resource.Run]
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "runs"), q, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the runs of %q: %w", namespace, err)
	}
	return &p, nil
}

// GetRun returns a run with its jobs and actions.
func (c *Client) GetRun(ctx context.Context, namespace, run string) (*resource.Run, error) {
	var r resource.Run
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "runs", run), nil, "", nil, &r); err != nil {
		return nil, fmt.Errorf("get run %q: %w", namespace+"/"+run, err)
	}
	return &r, nil
}

// ListJobs returns the jobs of a run.
func (c *Client) ListJobs(ctx context.Context, namespace, run string) ([]resource.JobStatus, error) {
	var p wire.Page[resource.JobStatus]
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "runs", run, "jobs"), nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the jobs of run %q: %w", namespace+"/"+run, err)
	}
	return p.Items, nil
}

// ListActions returns the actions of a job of a run.
func (c *Client) ListActions(ctx context.Context, namespace, run, job string) ([]resource.ActionStatus, error) {
	var p wire.Page[resource.ActionStatus]
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "runs", run, "jobs", job, "actions"), nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the actions of job %q of run %q: %w", job, namespace+"/"+run, err)
	}
	return p.Items, nil
}

// CancelRun cancels a run.
func (c *Client) CancelRun(ctx context.Context, namespace, run, reason string) (*resource.Run, error) {
	body, err := json.Marshal(wire.CancelRequest{Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("cancel run %q: %w", namespace+"/"+run, err)
	}
	var r resource.Run
	if err := c.do(ctx, http.MethodPost, nsPath(namespace, "runs", run, "cancel"), nil, "application/json", body, &r); err != nil {
		return nil, fmt.Errorf("cancel run %q: %w", namespace+"/"+run, err)
	}
	return &r, nil
}

// Decide approves or rejects a job of a run waiting for approval. An empty
// job means the only waiting job of the run.
func (c *Client) Decide(ctx context.Context, namespace, run, job string, approve bool, comment string) (*resource.Run, error) {
	verb := "approve"
	if !approve {
		verb = "reject"
	}
	body, err := json.Marshal(wire.DecideRequest{Job: job, Comment: comment})
	if err != nil {
		return nil, fmt.Errorf("%s run %q: %w", verb, namespace+"/"+run, err)
	}
	var r resource.Run
	if err := c.do(ctx, http.MethodPost, nsPath(namespace, "runs", run, verb), nil, "application/json", body, &r); err != nil {
		return nil, fmt.Errorf("%s run %q: %w", verb, namespace+"/"+run, err)
	}
	return &r, nil
}

// ActionLog returns the log of one action: complete once the action has
// ended, what there is so far while it runs. The caller closes it.
func (c *Client) ActionLog(ctx context.Context, namespace, run, job, action string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, nsPath(namespace, "runs", run, "jobs", job, "actions", action, "log"), nil, "", nil)
	if err != nil {
		return nil, fmt.Errorf("read the log of action %q of job %q of run %q: %w", action, job, namespace+"/"+run, err)
	}
	return resp.Body, nil
}

// Plugins returns the plugins the server runs and their state.
func (c *Client) Plugins(ctx context.Context) ([]wire.PluginStatus, error) {
	var p wire.Page[wire.PluginStatus]
	if err := c.do(ctx, http.MethodGet, "/plugins", nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the server's plugins: %w", err)
	}
	return p.Items, nil
}

// Workers lists the remote workers the servers heard of.
func (c *Client) Workers(ctx context.Context) ([]resource.Worker, error) {
	var p wire.Page[resource.Worker]
	if err := c.do(ctx, http.MethodGet, "/workers", nil, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the workers: %w", err)
	}
	return p.Items, nil
}

// DrainWorker drains a worker (it finishes its running jobs and leases no
// more), or with drain false lets it lease again.
func (c *Client) DrainWorker(ctx context.Context, name string, drain bool) (*resource.Worker, error) {
	var w resource.Worker
	body := []byte(`{"drain":false}`)
	if drain {
		body = []byte(`{"drain":true}`)
	}
	if err := c.do(ctx, http.MethodPost, "/workers/"+url.PathEscape(name)+"/drain", nil, "application/json", body, &w); err != nil {
		return nil, fmt.Errorf("drain worker %s: %w", name, err)
	}
	return &w, nil
}

// ReloadPlugins asks the server to re-read the plugins it hosts and apply
// the changes live (admin only).
func (c *Client) ReloadPlugins(ctx context.Context) (*wire.ReloadResult, error) {
	var r wire.ReloadResult
	if err := c.do(ctx, http.MethodPost, "/plugins/reload", nil, "application/json", []byte("{}"), &r); err != nil {
		return nil, fmt.Errorf("reload the server's plugins: %w", err)
	}
	return &r, nil
}

func nsPath(namespace string, parts ...string) string {
	var b strings.Builder
	b.WriteString("/namespaces/")
	b.WriteString(url.PathEscape(namespace))
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

func pageQuery(p wire.PageRequest) url.Values {
	q := url.Values{}
	if p.Size > 0 {
		q.Set("pageSize", strconv.Itoa(p.Size))
	}
	if p.Token != "" {
		q.Set("pageToken", p.Token)
	}
	return q
}

// do sends a request and decodes a JSON response into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte, out any) error {
	resp, err := c.send(ctx, method, path, q, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the server's %s response: %w", resp.Status, err)
	}
	return nil
}

// send sends a request and returns the response of a 2xx status; any other
// status is decoded into an error.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + wire.Prefix + path
	u.RawPath = ""
	if p, err := url.PathUnescape(u.Path); err == nil && p != u.Path {
		u.RawPath = u.Path
		u.Path = p
	}
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build the request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{Server: c.base.String(), Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// decodeError turns an error response back into the error the server
// had: a *wire.ValidationError, or a *wire.Error whose kind is the sentinel
// of the response's code.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // what was read is enough to report
	var e wire.ErrorResponse
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		// Not one of ours (a proxy, or not a Palvella server at all).
		msg := strings.TrimSpace(string(b))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = resp.Status
		}
		out := &wire.Error{Kind: types.ErrInternal, Message: fmt.Sprintf("the server answered %s: %s", resp.Status, msg)}
		for _, c := range wire.ErrorCodes {
			if c.Status == resp.StatusCode && c.Err != nil {
				out.Kind = c.Err
				break
			}
		}
		return out
	}
	if e.Error.Code == wire.CodeValidationFailed {
		return &wire.ValidationError{Problems: e.Error.Problems}
	}
	out := &wire.Error{Kind: types.ErrInternal, Code: e.Error.Code, Field: e.Error.Field, Message: e.Error.Message}
	for _, c := range wire.ErrorCodes {
		if c.Code == e.Error.Code && c.Err != nil {
			out.Kind = c.Err
			break
		}
	}
	if out.Kind == types.ErrInternal && e.Error.Code != wire.CodeInternal {
		switch {
		case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound:
			out.Kind = types.ErrUnimplemented // a server too old for this route
		}
	}
	return out
}

// IsUnreachable reports whether err says no server answered.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}
