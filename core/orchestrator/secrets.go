package orchestrator

import (
	"context"
	"strconv"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// jobEnv is the environment of a job's commands.
func (o *Orchestrator) jobEnv(ctx context.Context, run *resource.Run, p *plan, pj *planJob, ws *engine.Workspace) (map[string]string, error) {
	env := map[string]string{}
	for k, v := range p.Env {
		if v.FromCredential != "" {
			return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "spec.env."+k, "credentials in env ({from_credential: %s}) are not available on this server yet", v.FromCredential)
		}
		env[k] = v.Value
	}
	env["PALVELLA_RUN"] = run.Name
	env["PALVELLA_RUN_NUMBER"] = strconv.FormatInt(run.Number, 10)
	env["PALVELLA_PIPELINE"] = run.Pipeline
	env["PALVELLA_NAMESPACE"] = run.Namespace
	env["PALVELLA_JOB"] = pj.Name
	env["PALVELLA_WORKSPACE"] = ws.Workdir
	return env, nil
}

// maskerFor returns the function that masks secret values in the log lines
// of an execution's actions.
func (o *Orchestrator) maskerFor(ref sdk.ExecutionRef) func(string) string {
	return func(s string) string { return s }
}
