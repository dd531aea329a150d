package orchestrator

import "time"

// plan is what the scheduler needs of a pipeline version: the spec with
// every default applied, in a form that is stable across versions of the
// spec package. It is derived from the stored spec when a run starts.
type plan struct {
	Namespace   string
	Name        string
	Params      []planParam
	Engine      engineRef
	Env         map[string]envValue
	Jobs        []planJob
	Timeout     time.Duration
	Concurrency int
}

type planParam struct {
	Name     string
	Type     string
	Default  any
	Required bool
}

type engineRef struct {
	// Type is a named engine or an engine type ("local", "docker", ...);
	// empty for the server's default engine (see engineFor).
	Type    string
	Options map[string]any
}

// envValue is a literal or a credential reference.
type envValue struct {
	Value          string
	FromCredential string
}

type planJob struct {
	Name     string
	Requires []string
	When     string // success, failure, always
	If       string
	Engine   *engineRef
	Params   map[string]any
	Uses     string
	With     map[string]any
	Actions  []planAction
	Get, Put []storageEntry
	Timeout  time.Duration
	Retries  int
	// RunsOn are the labels a worker must have to run the job.
	RunsOn map[string]string
}

type planAction struct {
	Name      string
	Type      string
	If        string
	Params    map[string]any
	OnSuccess string // continue, succeed, fail
	OnFailure string
	Timeout   time.Duration
	// Phase is "" for the job's own actions, or setup or teardown for
	// its engine's (engines.go).
	Phase string
}

type storageEntry struct {
	Path  string
	Scope string // run or pipeline
	Key   string
}

func (p *plan) job(name string) *planJob {
	for i := range p.Jobs {
		if p.Jobs[i].Name == name {
			return &p.Jobs[i]
		}
	}
	return nil
}
