package resource

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// KindTriggerState is the kind of a schedule trigger's persisted state.
const KindTriggerState = "TriggerState"

// Trigger record outcomes.
const (
	// TriggerStarted: the firing started a run (Runs names it).
	TriggerStarted = "started"
	// TriggerRejected: the firing was refused (a webhook with no or a
	// wrong signature, too large, replayed, malformed); Reason says why.
	TriggerRejected = "rejected"
	// TriggerDropped: no pipeline or trigger matched the firing.
	TriggerDropped = "dropped"
	// TriggerFailed: the firing was accepted but the run could not be
	// started (bad params, the pipeline was deleted); Reason says why.
	TriggerFailed = "failed"
)

// TriggerRecord is one firing of a trigger (webhook call, interval or cron
// tick, manual run) and what came of it: the runs it started, or why it
// was rejected or dropped. Records are labelled with pipeline, trigger
// and outcome.
type TriggerRecord struct {
	Meta
	// Type is webhook, interval, cron or manual.
	Type     string `json:"type"`
	Pipeline string `json:"pipeline"`
	Trigger  string `json:"trigger,omitempty"`
	// FiredAt is when the firing arrived (or, for a schedule, when it was
	// handled); Due is the scheduled time it stands for.
	FiredAt time.Time  `json:"firedAt"`
	Due     *time.Time `json:"due,omitempty"`
	// DeliveryID is a webhook call's delivery ID.
	DeliveryID string `json:"deliveryId,omitempty"`
	// Headers are the selected headers of a webhook call.
	Headers map[string]string `json:"headers,omitempty"`
	// Outcome is started, rejected, dropped or failed.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Params are the run params the trigger mapped.
	Params map[string]string `json:"params,omitempty"`
	// Runs are the names of the runs the firing started.
	Runs []string `json:"runs,omitempty"`
}

// SelectorLabels are the labels a record is stored with, for selection:
// pipeline, outcome, type and (when there is one) trigger.
func (r *TriggerRecord) SelectorLabels() map[string]string {
	l := map[string]string{"pipeline": r.Pipeline, "outcome": r.Outcome, "type": r.Type}
	if r.Trigger != "" {
		l["trigger"] = r.Trigger
	}
	return l
}

// NewTriggerRecordName returns a unique record name, ordered by time.
func NewTriggerRecordName(at time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand does not fail
	return at.UTC().Format("20060102t150405.000000000") + "-" + hex.EncodeToString(b)
}

// TriggerState is what a server keeps about an interval or cron trigger so
// that a restart neither fires it twice for one due time nor misses a due
// run. Its name is "<pipeline>.<trigger>".
type TriggerState struct {
	Meta
	Pipeline string `json:"pipeline"`
	Trigger  string `json:"trigger"`
	// Schedule is the trigger's schedule as written ("every 10m", "cron
	// 0 3 * * * UTC"); when it changes, Next is computed afresh.
	Schedule string `json:"schedule"`
	// Next is the next due time. A server claims a due time by moving Next
	// past it with an update that carries the state's revision, so exactly
	// one server fires it.
	Next time.Time `json:"next"`
	// LastDue is the due time fired last, and LastRecord its record.
	LastDue    *time.Time `json:"lastDue,omitempty"`
	LastRecord string     `json:"lastRecord,omitempty"`
}
