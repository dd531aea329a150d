package wire

import (
	"time"

	"github.com/palvella/palvella/core/resource"
)

// LogLine is one line of an action's log in a stream:
// Line is "<RFC3339 time> <stream> <text>".
type LogLine struct {
	Job    string `json:"job"`
	Action string `json:"action"`
	Line   string `json:"line"`
}

// StreamEnd is the data of the last event of a log stream ("end").
type StreamEnd struct {
	Status resource.Status `json:"status"`
	Reason string          `json:"reason,omitempty"`
}

// RunDump is everything about a run, for a bug report.
type RunDump struct {
	Run *resource.Run `json:"run"`
	// Pipeline is the pipeline version the run ran: its spec and source
	// as applied, with literal secret values masked.
	Pipeline *resource.PipelineVersion `json:"pipeline,omitempty"`
	// TriggerRecord is the record of the firing that started the run.
	TriggerRecord *resource.TriggerRecord `json:"triggerRecord,omitempty"`
	Timeline      Timeline                `json:"timeline"`
	// Logs are the actions' logs by "<job>/<action>".
	Logs     map[string]string `json:"logs"`
	DumpedAt time.Time         `json:"dumpedAt"`
}

// Timeline is when each job and action of a run waited and ran.
type Timeline struct {
	Run        string          `json:"run"`
	Status     resource.Status `json:"status"`
	QueuedAt   *time.Time      `json:"queuedAt,omitempty"`
	StartedAt  *time.Time      `json:"startedAt,omitempty"`
	FinishedAt *time.Time      `json:"finishedAt,omitempty"`
	// DurationMs is from the run's queueing to its end (or to now).
	DurationMs int64         `json:"durationMs"`
	Jobs       []TimelineJob `json:"jobs"`
}

// TimelineJob is one job on a timeline. QueueWaitMs is from queued to
// started, RunMs from started to finished (or to now while it runs).
type TimelineJob struct {
	Name        string           `json:"name"`
	Status      resource.Status  `json:"status"`
	QueuedAt    *time.Time       `json:"queuedAt,omitempty"`
	StartedAt   *time.Time       `json:"startedAt,omitempty"`
	FinishedAt  *time.Time       `json:"finishedAt,omitempty"`
	QueueWaitMs int64            `json:"queueWaitMs"`
	RunMs       int64            `json:"runMs"`
	Actions     []TimelineAction `json:"actions"`
}

// TimelineAction is one action on a timeline.
type TimelineAction struct {
	Name       string          `json:"name"`
	Status     resource.Status `json:"status"`
	StartedAt  *time.Time      `json:"startedAt,omitempty"`
	FinishedAt *time.Time      `json:"finishedAt,omitempty"`
	RunMs      int64           `json:"runMs"`
}

// TimelineOf computes a run's timeline; now ends what has not ended.
func TimelineOf(run *resource.Run, now time.Time) Timeline {
	span := func(from, to *time.Time) int64 {
		if from == nil {
			return 0
		}
		end := now
		if to != nil {
			end = *to
		}
		return max(end.Sub(*from).Milliseconds(), 0)
	}
	t := Timeline{Run: run.Name, Status: run.Status, QueuedAt: run.QueuedAt, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt,
		DurationMs: span(run.QueuedAt, run.FinishedAt), Jobs: []TimelineJob{}}
	for _, j := range run.Jobs {
		tj := TimelineJob{Name: j.Name, Status: j.Status, QueuedAt: j.QueuedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
			Actions: []TimelineAction{}}
		if j.QueuedAt != nil {
			end := j.StartedAt
			if end == nil {
				end = j.FinishedAt
			}
			tj.QueueWaitMs = span(j.QueuedAt, end)
		}
		tj.RunMs = span(j.StartedAt, j.FinishedAt)
		for _, a := range j.Actions {
			tj.Actions = append(tj.Actions, TimelineAction{Name: a.Name, Status: a.Status, StartedAt: a.StartedAt, FinishedAt: a.FinishedAt,
				RunMs: span(a.StartedAt, a.FinishedAt)})
		}
		t.Jobs = append(t.Jobs, tj)
	}
	return t
}
