package expr

import "maps"

// Context is what an expression sees. Its fields become the top-level
// names params, job, jobs, actions, trigger and run.
type Context struct {
	// Params are the run's parameters, coerced to their declared types.
	Params map[string]any
	// Job is the job being evaluated (job.params).
	Job Job
	// Jobs are the run's jobs by name. Include every job of the run, with
	// its current status, so that jobs.<name>.status works for a job that
	// was skipped or has not run.
	Jobs map[string]Result
	// Actions are the actions of the current job that have a result, by
	// name.
	Actions map[string]Result
	// Trigger is what started the run.
	Trigger Trigger
	// Run identifies the run.
	Run Run
}

// Job is the job an expression is evaluated for.
type Job struct {
	// Params are the job's params, after interpolation.
	Params map[string]any
}

// Result is the status and outputs of a job or an action.
type Result struct {
	// Status is one of pending, queued, running, waiting, success,
	// failure, skipped, cancelled.
	Status string
	// Outputs are the values the job or action produced. A missing key
	// reads as nil, so outputs of a skipped job compare unequal to
	// anything but nil.
	Outputs map[string]any
}

// Trigger describes what started a run.
type Trigger struct {
	// Type is webhook, interval, cron, or manual for a run started from
	// the CLI or API.
	Type string
	// Name is the trigger's name in the pipeline (empty for manual).
	Name string
	// Payload is the decoded JSON body of a webhook call.
	Payload map[string]any
	// Headers are the webhook call's headers, one value per name.
	Headers map[string]string
}

// Run identifies the run an expression belongs to.
type Run struct {
	ID        string
	Pipeline  string
	Namespace string
}

// Names are the top-level names every expression can use, sorted.
var Names = []string{"actions", "job", "jobs", "params", "run", "trigger"}

// Map returns the context as the plain map an expression is evaluated
// against: the same shape the action plugins receive. Nil maps become
// empty maps, so every job and action has outputs.
func (c Context) Map() map[string]any {
	results := func(in map[string]Result) map[string]any {
		out := make(map[string]any, len(in))
		for name, r := range in {
			out[name] = map[string]any{"status": r.Status, "outputs": orEmpty(r.Outputs)}
		}
		return out
	}
	headers := make(map[string]any, len(c.Trigger.Headers))
	for k, v := range c.Trigger.Headers {
		headers[k] = v
	}
	return map[string]any{
		"params":  orEmpty(c.Params),
		"job":     map[string]any{"params": orEmpty(c.Job.Params)},
		"jobs":    results(c.Jobs),
		"actions": results(c.Actions),
		"trigger": map[string]any{
			"type":    c.Trigger.Type,
			"name":    c.Trigger.Name,
			"payload": orEmpty(c.Trigger.Payload),
			"headers": headers,
		},
		"run": map[string]any{"id": c.Run.ID, "pipeline": c.Run.Pipeline, "namespace": c.Run.Namespace},
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}
