package api

import (
	"github.com/palvella/palvella/core/api/wire"
	"net/http"
	"strings"

	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// Prefix is where version 1 of the API lives.
const Prefix = wire.Prefix

// BodyKind says what a route reads from its request body, and so which
// size limit applies.
type BodyKind int

// Body kinds.
const (
	// BodyNone: the route reads no body.
	BodyNone BodyKind = iota
	// BodyPipeline: a pipeline file, YAML or JSON (Options.MaxPipelineBytes).
	BodyPipeline
	// BodyJSON: a JSON object (Options.MaxJSONBytes).
	BodyJSON
)

// Route is one route of the API. The table returned by [Routes] is the
// only place routes are declared: the handler, the OpenAPI document and the
// tests all read it.
//
// Resource is the template of the resource string the route is authorized
// against. Its placeholders are:
//
//	{ns}        the namespace in the path
//	{name}      the pipeline, token id or credential name in the path
//	{run}       the run in the path, "<pipeline>-<number>" written
//	            "<pipeline>/<number>" ("run:default/deploy/42")
//	{pipeline}  the `pipeline` query parameter, or "*" when absent
//	{file}      "<namespace>/<name>" read from the pipeline file's metadata
//	            (the `namespace` query parameter overrides the file's)
//	{credential} the credential in the path as its owner has it:
//	            "<namespace>/<name>", or "<name>" for a global credential
//	            or one that does not exist yet
//
// Scope says what the route does for an identity limited to namespaces;
// every authenticated route has one, and a test calls every route with
// such identities.
type Route struct {
	Method string
	// Pattern is the path, in net/http ServeMux syntax.
	Pattern string
	// Public routes need no token; every other route is authenticated
	// and then authorized.
	Public bool
	// Resource and Permission are what the Authorizer is asked about.
	Resource   string
	Permission string
	Scope      Scope
	Body       BodyKind
	// Summary says what the route does, for the OpenAPI document.
	Summary string

	handle func(*server, *call) error
}

// Scope is how a route keeps an identity limited to namespaces
// (Identity.Namespaces) inside them. The API enforces it whatever the
// authorization plugin decides.
type Scope string

// Scopes.
const (
	// ScopeNamespaced: the resource names a namespace ({ns} or {file}); an
	// identity limited to other namespaces is refused (403).
	ScopeNamespaced Scope = "namespaced"
	// ScopeOwned: the route changes one thing named in the path (a
	// credential, a token) that belongs to namespaces or to none; the
	// handler refuses a limited identity anything not of its namespaces,
	// global things included.
	ScopeOwned Scope = "owned"
	// ScopeFiltered: a list, a stream or a creation that the handler
	// narrows to the identity's namespaces (events, tokens, credentials).
	ScopeFiltered Scope = "filtered"
	// ScopeServer: the whole server (metrics, plugins, the management
	// token): a limited identity is refused (403).
	ScopeServer Scope = "server"
	// ScopeCaller: about the caller or the API itself (whoami, the OpenAPI
	// document, the types a pipeline may name): no namespace's data.
	ScopeCaller Scope = "caller"
)

// Routes returns every route of the API.
func Routes() []Route {
	rs := routes()
	for i := range rs {
		rs[i].handle = nil
	}
	return rs
}

func routes() []Route {
	const (
		read, write  = authorization.MethodRead, authorization.MethodWrite
		run, approve = authorization.MethodRun, authorization.MethodApprove
		ns           = Prefix + "/namespaces/{ns}"
	)
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/health", Public: true,
			Summary: "Report that the server is up", handle: (*server).health},
		{Method: http.MethodGet, Pattern: Prefix + "/openapi.yaml", Resource: "api:openapi", Permission: read, Scope: ScopeCaller,
			Summary: "This document", handle: (*server).openapi},
		{Method: http.MethodGet, Pattern: Prefix + "/plugins", Resource: "plugin:*", Permission: read, Scope: ScopeServer,
			Summary: "List the plugins the server runs and their state", handle: (*server).plugins},
		{Method: http.MethodGet, Pattern: Prefix + "/types", Resource: "type:*", Permission: read, Scope: ScopeCaller,
			Summary: "List the action, job and engine types of the installed plugins, as a pipeline names them, with the JSON Schema of their params", handle: (*server).types},
		{Method: http.MethodGet, Pattern: Prefix + "/registries", Resource: "registry:*", Permission: read, Scope: ScopeServer,
			Summary: "List the plugin registries the server's home adds plugins from, in order: name, location, the plugin name patterns each owns and its pinned root keys' ids", handle: (*server).registries},
		{Method: http.MethodGet, Pattern: Prefix + "/workers", Resource: "worker:*", Permission: read, Scope: ScopeServer,
			Summary: "List the remote workers the servers heard of: labels, capacity, running jobs, last heartbeat, and whether drained", handle: (*server).workers},
		{Method: http.MethodPost, Pattern: Prefix + "/workers/{name}/drain", Resource: "worker:{name}", Permission: write, Scope: ScopeServer, Body: BodyJSON,
			Summary: "Drain a remote worker: it finishes its running jobs and leases no more (with {\"drain\": false}, it leases again)", handle: (*server).drainWorker},
		{Method: http.MethodPost, Pattern: Prefix + "/plugins/reload", Resource: "plugin:*", Permission: write, Scope: ScopeServer, Body: BodyJSON,
			Summary: "Re-read the plugins to host and apply the changes live: added plugins start, upgraded ones serve new jobs while the old version finishes the jobs it had, removed ones stop after their last job", handle: (*server).reloadPlugins},

		{Method: http.MethodPost, Pattern: Prefix + "/pipelines/apply", Resource: "pipeline:{file}", Permission: write, Scope: ScopeNamespaced, Body: BodyPipeline,
			Summary: "Apply a pipeline file: create the pipeline or a new version of it", handle: (*server).applyPipeline},
		{Method: http.MethodPost, Pattern: Prefix + "/pipelines/validate", Resource: "pipeline:{file}", Permission: read, Scope: ScopeNamespaced, Body: BodyPipeline,
			Summary: "Check a pipeline file without applying it", handle: (*server).validatePipeline},
		{Method: http.MethodGet, Pattern: ns + "/pipelines", Resource: "pipeline:{ns}/*", Permission: read, Scope: ScopeNamespaced,
			Summary: "List the pipelines of a namespace", handle: (*server).listPipelines},
		{Method: http.MethodGet, Pattern: ns + "/pipelines/{name}", Resource: "pipeline:{ns}/{name}", Permission: read, Scope: ScopeNamespaced,
			Summary: "Get a pipeline", handle: (*server).getPipeline},
		{Method: http.MethodDelete, Pattern: ns + "/pipelines/{name}", Resource: "pipeline:{ns}/{name}", Permission: write, Scope: ScopeNamespaced,
			Summary: "Delete a pipeline", handle: (*server).deletePipeline},
		{Method: http.MethodGet, Pattern: ns + "/pipelines/{name}/versions", Resource: "pipeline:{ns}/{name}", Permission: read, Scope: ScopeNamespaced,
			Summary: "List the applied versions of a pipeline", handle: (*server).listVersions},
		{Method: http.MethodPost, Pattern: ns + "/pipelines/{name}/runs", Resource: "pipeline:{ns}/{name}", Permission: run, Scope: ScopeNamespaced, Body: BodyJSON,
			Summary: "Start a run of a pipeline", handle: (*server).startRun},

		{Method: http.MethodGet, Pattern: ns + "/runs", Resource: "run:{ns}/{pipeline}", Permission: read, Scope: ScopeNamespaced,
			Summary: "List the runs of a namespace, newest first", handle: (*server).listRuns},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "Get a run", handle: (*server).getRun},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}/jobs", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "List the jobs of a run", handle: (*server).listJobs},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}/jobs/{job}/actions", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "List the actions of a job of a run", handle: (*server).listActions},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}/jobs/{job}/actions/{action}/log", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "Get the log of an action, as plain text", handle: (*server).actionLog},
		{Method: http.MethodPost, Pattern: ns + "/runs/{run}/cancel", Resource: "run:{ns}/{run}", Permission: write, Scope: ScopeNamespaced, Body: BodyJSON,
			Summary: "Cancel a run", handle: (*server).cancelRun},
		{Method: http.MethodPost, Pattern: ns + "/runs/{run}/approve", Resource: "run:{ns}/{run}", Permission: approve, Scope: ScopeNamespaced, Body: BodyJSON,
			Summary: "Approve a job of a run waiting for approval", handle: (*server).approve},
		{Method: http.MethodPost, Pattern: ns + "/runs/{run}/reject", Resource: "run:{ns}/{run}", Permission: approve, Scope: ScopeNamespaced, Body: BodyJSON,
			Summary: "Reject a job of a run waiting for approval", handle: (*server).reject},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}/logs/stream", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "Follow the logs of a run (of one job with ?job=) as server-sent events until it ends", handle: (*server).streamRunLogs},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}/jobs/{job}/actions/{action}/log/stream", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "Follow the log of an action as server-sent events until it ends", handle: (*server).streamActionLog},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}/timeline", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "When each job and action of a run waited and ran", handle: (*server).timeline},
		{Method: http.MethodGet, Pattern: ns + "/runs/{run}/dump", Resource: "run:{ns}/{run}", Permission: read, Scope: ScopeNamespaced,
			Summary: "Everything about a run, for a bug report, with credential values masked", handle: (*server).dumpRun},
		{Method: http.MethodGet, Pattern: ns + "/triggers/records", Resource: "trigger:{ns}/{pipeline}", Permission: read, Scope: ScopeNamespaced,
			Summary: "List the trigger records of a namespace: each firing and what came of it", handle: (*server).listTriggerRecords},
		{Method: http.MethodGet, Pattern: ns + "/triggers/records/{name}", Resource: "trigger:{ns}/*", Permission: read, Scope: ScopeNamespaced,
			Summary: "Get a trigger record", handle: (*server).getTriggerRecord},
		{Method: http.MethodGet, Pattern: ns + "/events", Resource: "event:{ns}/{pipeline}", Permission: read, Scope: ScopeNamespaced,
			Summary: "Follow the run, job, action, approval and trigger events of a namespace as server-sent events", handle: (*server).namespaceEvents},
		{Method: http.MethodGet, Pattern: Prefix + "/events", Resource: "event:*", Permission: read, Scope: ScopeFiltered,
			Summary: "Follow every event, plugin events included, as server-sent events", handle: (*server).allEvents},
		{Method: http.MethodGet, Pattern: "/metrics", Resource: "metrics:server", Permission: read, Scope: ScopeServer,
			Summary: "Prometheus metrics", handle: (*server).metrics},

		{Method: http.MethodPost, Pattern: Prefix + "/tokens/bootstrap", Public: true, Body: BodyJSON,
			Summary: "Create the first management token of a server that has never issued one; refused afterwards", handle: (*server).bootstrap},
		{Method: http.MethodGet, Pattern: Prefix + "/whoami", Resource: "identity:self", Permission: read, Scope: ScopeCaller,
			Summary: "Say who the request's token authenticates as", handle: (*server).whoami},
		{Method: http.MethodPost, Pattern: Prefix + "/whoami/access", Resource: "identity:self", Permission: read, Scope: ScopeCaller, Body: BodyJSON,
			Summary: "Say whether the caller has each of the given permissions on resources, as the routes would decide, so that a client shows only what it may do", handle: (*server).access},
		{Method: http.MethodPost, Pattern: Prefix + "/tokens", Resource: "token:*", Permission: write, Scope: ScopeFiltered, Body: BodyJSON,
			Summary: "Issue a token, shown once; its roles and namespaces may not exceed the caller's", handle: (*server).createToken},
		{Method: http.MethodGet, Pattern: Prefix + "/tokens", Resource: "token:*", Permission: read, Scope: ScopeFiltered,
			Summary: "List tokens (never their values)", handle: (*server).listTokens},
		{Method: http.MethodDelete, Pattern: Prefix + "/tokens/{name}", Resource: "token:{name}", Permission: write, Scope: ScopeOwned,
			Summary: "Revoke a token by id (the management token too)", handle: (*server).revokeToken},
		{Method: http.MethodPost, Pattern: Prefix + "/tokens/management/rotate", Resource: "token:management", Permission: write, Scope: ScopeServer, Body: BodyJSON,
			Summary: "Replace the management token: issue a new one, shown once, revoke the old, and rewrite the server's cli.json", handle: (*server).rotateManagementToken},

		{Method: http.MethodPut, Pattern: Prefix + "/credentials/{name}", Resource: "credential:{credential}", Permission: write, Scope: ScopeOwned, Body: BodyJSON,
			Summary: "Create or replace a credential; its value is never returned", handle: (*server).setCredential},
		{Method: http.MethodGet, Pattern: Prefix + "/credentials", Resource: "credential:*", Permission: read, Scope: ScopeFiltered,
			Summary: "List credentials: names, types and times, never values", handle: (*server).listCredentials},
		{Method: http.MethodDelete, Pattern: Prefix + "/credentials/{name}", Resource: "credential:{credential}", Permission: write, Scope: ScopeOwned,
			Summary: "Delete a credential", handle: (*server).deleteCredential},
	}
}

// runResource writes a run name "<pipeline>-<number>" as
// "<pipeline>/<number>", the form authorization rules are written in, so
// that "run:default/deploy/*" covers every run of deploy. A name of another
// shape is kept as it is.
func runResource(run string) string {
	i := strings.LastIndexByte(run, '-')
	if i <= 0 || i == len(run)-1 {
		return run
	}
	for _, c := range run[i+1:] {
		if c < '0' || c > '9' {
			return run
		}
	}
	return run[:i] + "/" + run[i+1:]
}
