package sdk

import (
	"context"
	"strconv"

	"google.golang.org/grpc/metadata"
)

// ExecutionRef identifies the action a call is serving: the run, job and
// attempt. The core passes it with every action and engine call, and the
// host services use it to scope storage and credentials.
type ExecutionRef struct {
	Namespace string `json:"namespace,omitempty"`
	Pipeline  string `json:"pipeline,omitempty"`
	Run       string `json:"run,omitempty"`
	Job       string `json:"job,omitempty"`
	Action    string `json:"action,omitempty"`
	Attempt   int    `json:"attempt,omitempty"`
}

type executionKey struct{}

// WithExecution returns a context carrying ref.
func WithExecution(ctx context.Context, ref ExecutionRef) context.Context {
	return context.WithValue(ctx, executionKey{}, ref)
}

// ExecutionFrom returns the execution a context carries.
func ExecutionFrom(ctx context.Context) (ExecutionRef, bool) {
	ref, ok := ctx.Value(executionKey{}).(ExecutionRef)
	return ref, ok
}

const (
	mdNamespace = "palvella-namespace"
	mdPipeline  = "palvella-pipeline"
	mdRun       = "palvella-run"
	mdJob       = "palvella-job"
	mdAction    = "palvella-action"
	mdAttempt   = "palvella-attempt"
)

// OutgoingExecution copies the execution in ctx into outgoing gRPC
// metadata. The category shims call it on the client side.
func OutgoingExecution(ctx context.Context) context.Context {
	ref, ok := ExecutionFrom(ctx)
	if !ok {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx,
		mdNamespace, ref.Namespace, mdPipeline, ref.Pipeline, mdRun, ref.Run,
		mdJob, ref.Job, mdAction, ref.Action, mdAttempt, strconv.Itoa(ref.Attempt))
}

// IncomingExecution restores the execution sent by OutgoingExecution. The
// category shims call it on the server side.
func IncomingExecution(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok || len(md.Get(mdRun)) == 0 {
		return ctx
	}
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	attempt, _ := strconv.Atoi(first(mdAttempt)) // absent or malformed means attempt 0
	return WithExecution(ctx, ExecutionRef{
		Namespace: first(mdNamespace), Pipeline: first(mdPipeline), Run: first(mdRun),
		Job: first(mdJob), Action: first(mdAction), Attempt: attempt,
	})
}
