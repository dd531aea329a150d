// Package resource holds the typed resources of the Palvella core:
// pipelines and their versions, runs with their jobs and actions, and
// trigger records. Like Kubernetes objects, each has metadata (kind,
// namespace, name, labels, revision, timestamps), a spec and a status, and
// is stored as one document in the database plugin.
package resource

import (
	"encoding/json"
	"time"
)

// Kinds of resources.
const (
	KindNamespace       = "Namespace"
	KindPipeline        = "Pipeline"
	KindPipelineVersion = "PipelineVersion"
	KindRun             = "Run"
	// KindJob is the stored state of one job of a run (see Job).
	KindJob           = "Job"
	KindTriggerRecord = "TriggerRecord"
	// KindWorker is a remote worker as the servers last heard of it (see
	// Worker); KindWorkerQueue a queue of jobs that select workers by
	// their labels (see WorkerQueue).
	KindWorker      = "Worker"
	KindWorkerQueue = "WorkerQueue"
)

// Meta is the metadata every resource has.
type Meta struct {
	Kind      string            `json:"kind"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Revision is the database revision the resource was read at; updates
	// must carry it (optimistic concurrency).
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Status of a run, job or action.
type Status string

// Statuses. Every transition is timestamped.
const (
	StatusPending   Status = "pending"
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusWaiting   Status = "waiting"
	StatusSuccess   Status = "success"
	StatusFailure   Status = "failure"
	StatusSkipped   Status = "skipped"
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether the status is final.
func (s Status) Terminal() bool {
	switch s {
	case StatusSuccess, StatusFailure, StatusSkipped, StatusCancelled:
		return true
	}
	return false
}

// Transition records one status change.
type Transition struct {
	Status Status    `json:"status"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Pipeline is an applied pipeline: its current version and spec.
type Pipeline struct {
	Meta
	Description string `json:"description,omitempty"`
	// Version is the number of the current version, from 1.
	Version int `json:"version"`
	// Hash is the sha256 of the normalized spec of the current version.
	Hash string `json:"hash"`
	// Spec is the normalized spec of the current version (core/spec JSON).
	Spec json.RawMessage `json:"spec"`
	// LastRun is the number of the last run started; run numbers grow.
	LastRun int64 `json:"lastRun"`
}

// PipelineVersion is one applied version of a pipeline; runs record the
// version they ran. Its name is "<pipeline>.v<N>".
type PipelineVersion struct {
	Meta
	Pipeline string          `json:"pipeline"`
	Version  int             `json:"version"`
	Hash     string          `json:"hash"`
	Spec     json.RawMessage `json:"spec"`
	// Source is the file as it was applied.
	Source string `json:"source,omitempty"`
}

// TriggerInfo says what started a run.
type TriggerInfo struct {
	// Type is "manual", "webhook", "interval" or "cron".
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
	// Record is the name of the trigger record, when there is one.
	Record  string            `json:"record,omitempty"`
	Payload any               `json:"payload,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// By is the identity that started a manual run.
	By string `json:"by,omitempty"`
}

// Run is one run of a pipeline. Its name is "<pipeline>-<number>", unique in
// its namespace.
type Run struct {
	Meta
	Pipeline        string         `json:"pipeline"`
	PipelineVersion int            `json:"pipelineVersion"`
	Number          int64          `json:"number"`
	Params          map[string]any `json:"params"`
	Trigger         TriggerInfo    `json:"trigger"`
	Status          Status         `json:"status"`
	Reason          string         `json:"reason,omitempty"`
	// Jobs are the run's jobs in the pipeline's order. They are stored as
	// Job resources of their own, not in the run's document; the API
	// serves the run with its jobs assembled.
	Jobs []JobStatus `json:"jobs"`
	// Counts are how many of the run's jobs are in each status, as of the
	// last write of the run's document (exact once the run has ended).
	Counts      map[Status]int `json:"counts,omitempty"`
	Transitions []Transition   `json:"transitions"`
	QueuedAt    *time.Time     `json:"queuedAt,omitempty"`
	StartedAt   *time.Time     `json:"startedAt,omitempty"`
	FinishedAt  *time.Time     `json:"finishedAt,omitempty"`
}

// Job returns the status of the named job, or nil.
func (r *Run) Job(name string) *JobStatus {
	for i := range r.Jobs {
		if r.Jobs[i].Name == name {
			return &r.Jobs[i]
		}
	}
	return nil
}

// JobStatus is the state of one job of a run.
type JobStatus struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Skip says why a skipped job did not run: SkipByIf (its own `if` was
	// false; counts as satisfied for the jobs below it),
	// SkipByRequirements (a failure above it; counts as a failure for the
	// jobs below it) or SkipByWhen (`when: failure` and nothing failed;
	// counts as satisfied).
	Skip    SkipCause `json:"skip,omitempty"`
	Attempt int       `json:"attempt"`
	// MaxAttempts is how many attempts the job is allowed: its retries
	// plus one.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Execution identifies the live execution of the job (one lease of
	// it by a worker). Every write of a job's progress carries it, so a
	// worker that lost the job cannot record anything for it any more.
	Execution string `json:"execution,omitempty"`
	// Interruptions counts the times the job was stopped by a crash or a
	// stop of the server, an engine or a plugin, and run again. They do
	// not use up its retries.
	Interruptions int `json:"interruptions,omitempty"`
	// Worker names the remote worker (`palvella worker`) of the live
	// execution, or of the last one; empty for a server's embedded
	// worker.
	Worker  string         `json:"worker,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	Actions []ActionStatus `json:"actions"`
	// Resume is the index of the action to run next when a job waiting for
	// approval is released.
	Resume      int          `json:"resume,omitempty"`
	Transitions []Transition `json:"transitions"`
	QueuedAt    *time.Time   `json:"queuedAt,omitempty"`
	StartedAt   *time.Time   `json:"startedAt,omitempty"`
	FinishedAt  *time.Time   `json:"finishedAt,omitempty"`
}

// Job is the stored state of one job of a run: a resource of its own
// (kind Job, named "<run>.<job>", labelled run=<run>), so that a change of
// one job writes one small document, not the whole run. A job that has no
// record yet is pending; a job not ended when its run ended counts as
// cancelled. Its metadata is the database's and is not part of its data.
type Job struct {
	Meta     `json:"-"`
	Run      string `json:"run"`
	Pipeline string `json:"pipeline,omitempty"`
	JobStatus
}

// JobResourceName is the name of the Job resource of a run's job.
func JobResourceName(run, job string) string { return run + "." + job }

// SkipCause is why a job was skipped.
type SkipCause string

// The two kinds of skip.
const (
	SkipByIf           SkipCause = "if"
	SkipByRequirements SkipCause = "requirements"
	// SkipByWhen: a `when: failure` job found that no required job failed.
	// Nothing failed above it, so it counts as satisfied, like SkipByIf.
	SkipByWhen SkipCause = "when"
)

// Satisfied reports whether the job counts as satisfied for a job that
// requires it with `when: success`: it succeeded, or its own `if` skipped it.
func (j *JobStatus) Satisfied() bool {
	return j.Status == StatusSuccess || (j.Status == StatusSkipped && j.Skip != SkipByRequirements)
}

// FailedForDependents reports whether the job counts as failed for the jobs
// below it: it failed, was cancelled, or did not run because of its
// requirements.
func (j *JobStatus) FailedForDependents() bool {
	return j.Status == StatusFailure || j.Status == StatusCancelled || (j.Status == StatusSkipped && j.Skip == SkipByRequirements)
}

// Action returns the status of the named action, or nil.
func (j *JobStatus) Action(name string) *ActionStatus {
	for i := range j.Actions {
		if j.Actions[i].Name == name {
			return &j.Actions[i]
		}
	}
	return nil
}

// ActionStatus is the state of one action of a job.
type ActionStatus struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Status     Status         `json:"status"`
	Message    string         `json:"message,omitempty"`
	Outputs    map[string]any `json:"outputs,omitempty"`
	StartedAt  *time.Time     `json:"startedAt,omitempty"`
	FinishedAt *time.Time     `json:"finishedAt,omitempty"`
	// LogKey is where the action's log is kept in run storage.
	LogKey string `json:"logKey,omitempty"`
}

// SetStatus changes a status and records the transition.
func SetStatus(cur *Status, trans *[]Transition, to Status, reason string, at time.Time) {
	if *cur == to {
		return
	}
	*cur = to
	*trans = append(*trans, Transition{Status: to, At: at, Reason: reason})
}

// Object is any resource: each embeds Meta.
type Object interface {
	ObjectMeta() *Meta
}

// ObjectMeta returns the resource's metadata.
func (m *Meta) ObjectMeta() *Meta { return m }
