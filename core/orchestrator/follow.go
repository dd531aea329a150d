package orchestrator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// followPoll is how often a follower waiting for an action to start (or,
// when another process runs it, to end) looks again.
const followPoll = 100 * time.Millisecond

// logBatch is the most lines handed to a follower at once.
const logBatch = 512

// FollowLogs calls fn with the log lines of a run's actions as they are
// written (see core/api.Following), until what is followed has ended: the
// run, the job (jobName) or the action (actionName). An action running in
// this process is followed live; one that has ended is read from storage;
// one that runs in another process is read from storage as it is stored.
// Actions the run gains while it is followed (a job expanded by a job
// plugin, a job reached after an approval) are followed too, and a run,
// job or action waiting for approval is followed on until it ends.
func (o *Orchestrator) FollowLogs(ctx context.Context, ns, name, jobName, actionName string, fn func([]wire.LogLine) error) (*wire.StreamEnd, error) {
	run, err := o.followLogs(ctx, ns, name, jobName, actionName, fn)
	if err != nil {
		return nil, err
	}
	end := &wire.StreamEnd{Status: run.Status, Reason: run.Reason}
	if js := run.Job(jobName); js != nil {
		end = &wire.StreamEnd{Status: js.Status, Reason: js.Reason}
		if as := js.Action(actionName); as != nil {
			end = &wire.StreamEnd{Status: as.Status, Reason: as.Message}
		}
	}
	return end, nil
}

// followRunPoll is how often a log follower reads the run again for new
// actions and for its end.
const followRunPoll = 250 * time.Millisecond

// logTarget is one action whose log is followed.
type logTarget struct{ job, action string }

// targetState is what a follower of an action has done: lines sent (a
// follower started again for the action skips them) and whether one runs.
type targetState struct {
	sent    int
	running bool
	// done: a follower finished after the action had ended, so its whole
	// log was sent.
	done bool
}

// followLogs follows the selected actions of a run, those it gains
// included, until the run, job or action has ended and every log is
// sent, and returns the run as it ended.
func (o *Orchestrator) followLogs(ctx context.Context, ns, name, jobName, actionName string, fn func([]wire.LogLine) error) (*resource.Run, error) {
	run, err := o.GetRun(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	switch {
	case jobName != "" && run.Job(jobName) == nil:
		return nil, sdk.Errorf(sdk.ErrNotFound, "job", "run %s has no job %q", name, jobName)
	case actionName != "" && (run.Job(jobName) == nil || run.Job(jobName).Action(actionName) == nil):
		return nil, sdk.Errorf(sdk.ErrNotFound, "action", "job %s of run %s has no action %q", jobName, name, actionName)
	}
	// Each action is followed on its own; fn sees one batch at a time.
	var mu sync.Mutex
	send := func(lines []wire.LogLine) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(lines)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after the cancel below: the followers stop first
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stateMu sync.Mutex
	states := map[logTarget]*targetState{}
	var first error
	finished := make(chan struct{}, 1)

	// ended reports whether the action has ended in the run.
	ended := func(r *resource.Run, t logTarget) bool {
		if r.Status.Terminal() {
			return true
		}
		js := r.Job(t.job)
		if js == nil {
			return false
		}
		as := js.Action(t.action)
		return as != nil && as.Status.Terminal()
	}
	start := func(r *resource.Run, t logTarget, st *targetState) {
		st.running = true
		skip := st.sent
		endedBefore := ended(r, t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := 0
			follow := o.followAction
			if endedBefore {
				// Its log is complete in storage (or still in memory, for
				// a moment after it ended): read it, without asking for
				// the run again.
				follow = func(ctx context.Context, r *resource.Run, job, action string, send func([]wire.LogLine) error) error {
					if l := o.logs.get(logKey(r.Namespace, r.Name, job, action)); l != nil {
						return o.followLive(ctx, l, job, action, send)
					}
					return o.sendStored(ctx, r, job, action, send)
				}
			}
			err := follow(ctx, r, t.job, t.action, func(lines []wire.LogLine) error {
				if seen+len(lines) <= skip {
					seen += len(lines)
					return nil
				}
				if seen < skip {
					lines = lines[skip-seen:]
					seen = skip
				}
				seen += len(lines)
				if err := send(lines); err != nil {
					return err
				}
				stateMu.Lock()
				st.sent = seen
				stateMu.Unlock()
				return nil
			})
			// Its whole log is sent if the action has ended; otherwise
			// (it waits for approval, or its end is not written yet) it
			// is followed again.
			done := err == nil && endedBefore
			if err == nil && !endedBefore {
				var gerr error
				done, gerr = o.actionTerminal(ctx, r, t.job, t.action)
				done = done && gerr == nil
			}
			stateMu.Lock()
			st.running = false
			st.done = done
			if err != nil && first == nil {
				first = err
				cancel()
			}
			stateMu.Unlock()
			select {
			case finished <- struct{}{}:
			default:
			}
		}()
	}
	for {
		// Follow each selected action that no follower has followed to
		// its end yet. One whose follower ended while the action had not
		// (it waited for approval, or its log was cut short as the job
		// moved) is followed again from the line after the last sent.
		all := true
		stateMu.Lock()
		for _, j := range run.Jobs {
			if jobName != "" && j.Name != jobName {
				continue
			}
			for _, a := range j.Actions {
				if actionName != "" && a.Name != actionName {
					continue
				}
				t := logTarget{j.Name, a.Name}
				st := states[t]
				if st == nil {
					st = &targetState{}
					states[t] = st
				}
				if st.done {
					continue
				}
				all = false
				if !st.running {
					start(run, t, st)
				}
			}
		}
		err := first
		stateMu.Unlock()
		if err != nil {
			return nil, err
		}
		if all && o.followedEnded(run, jobName, actionName) {
			return run, nil
		}
		select {
		case <-ctx.Done():
			stateMu.Lock()
			err := first
			stateMu.Unlock()
			if err != nil {
				return nil, err
			}
			return nil, ctx.Err()
		case <-finished:
		case <-time.After(followRunPoll):
		}
		if run.Status.Terminal() {
			continue // an ended run gains no actions: only its followers are awaited
		}
		if run, err = o.GetRun(ctx, ns, name); err != nil {
			return nil, err
		}
	}
}

// actionTerminal reports whether an action (or its job, or its run) has
// ended, from its job's document and the run's: two reads, however many
// jobs the run has. Waiting for approval is not an end.
func (o *Orchestrator) actionTerminal(ctx context.Context, run *resource.Run, job, action string) (bool, error) {
	doc := &resource.Job{}
	if err := o.store.get(ctx, resource.KindJob, run.Namespace, resource.JobResourceName(run.Name, job), doc); err != nil {
		return false, fmt.Errorf("read job %s of run %s: %w", job, run.Name, err)
	}
	if as := doc.JobStatus.Action(action); as != nil && as.Status.Terminal() {
		return true, nil
	}
	if doc.JobStatus.Status.Terminal() {
		return true, nil
	}
	r := &resource.Run{}
	if err := o.store.get(ctx, resource.KindRun, run.Namespace, run.Name, r); err != nil {
		return false, fmt.Errorf("read run %s: %w", run.Name, err)
	}
	return r.Status.Terminal(), nil
}

// followedEnded reports whether what a log follower follows has ended:
// the run, or the job, or the action. Waiting for approval is not an end.
func (o *Orchestrator) followedEnded(run *resource.Run, jobName, actionName string) bool {
	if run.Status.Terminal() {
		return true
	}
	js := run.Job(jobName)
	if jobName == "" || js == nil {
		return false
	}
	if actionName == "" {
		return js.Status.Terminal()
	}
	as := js.Action(actionName)
	return as != nil && as.Status.Terminal()
}

// followAction follows one action's log to its end.
func (o *Orchestrator) followAction(ctx context.Context, run *resource.Run, job, action string, send func([]wire.LogLine) error) error {
	key := logKey(run.Namespace, run.Name, job, action)
	for {
		if l := o.logs.get(key); l != nil {
			return o.followLive(ctx, l, job, action, send)
		}
		cur, err := o.GetRun(ctx, run.Namespace, run.Name)
		if err != nil {
			return err
		}
		st := resource.StatusPending
		if js := cur.Job(job); js != nil {
			if as := js.Action(action); as != nil {
				st = as.Status
			}
		}
		if st == resource.StatusRunning && !o.runsJob(run.Namespace, run.Name, job) {
			// It runs on another server: its log is read from storage
			// as that server stores it.
			return o.followStored(ctx, run, job, action, send)
		}
		if st.Terminal() || (cur.Status.Terminal() && st != resource.StatusRunning) {
			// Ended: its log was saved before it left the live set. A
			// check of the live set again closes the race with an action
			// that ended between the two reads.
			if l := o.logs.get(key); l != nil {
				return o.followLive(ctx, l, job, action, send)
			}
			return o.sendStored(ctx, cur, job, action, send)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
	}
}

// followLive follows a log of this process: it reads what is stored from
// storage and the rest from memory, then each new part as it is written,
// so a follower that attaches late or falls behind still gets every line
// exactly once, in order.
func (o *Orchestrator) followLive(ctx context.Context, l *actionLog, job, action string, send func([]wire.LogLine) error) error {
	wake, stop := l.watch()
	defer stop()
	if o.opts.Metrics != nil {
		o.opts.Metrics.LogFollowers.Inc()
		defer o.opts.Metrics.LogFollowers.Dec()
	}
	r := l.reader(ctx)
	defer r.Close()
	ls := newLineSender(r, job, action, send)
	for {
		if err := ls.drain(); err != nil {
			return err
		}
		if r.done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// runsJob reports whether this process runs a job now.
func (o *Orchestrator) runsJob(ns, run, job string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.running[ns+"/"+run+"/"+job]
	return ok
}

// storedPoll is how often a follower of an action that runs on another
// server looks for more of its log in storage.
const storedPoll = 250 * time.Millisecond

// followStored follows the log of an action that runs on another server,
// from run storage, where that server stores the chunk being filled every
// liveFlush and each chunk once it is sealed (logs.go). Chunks are stored
// in order and each one always ends at a line's end, so a position (chunk,
// offset) gives every line once, in order: a chunk is read again from the
// offset reached while it grows, and left once the next one exists (it is
// complete by then). The action's end is recorded after its whole log is
// stored, so once it is seen ended, what storage holds is the whole log.
func (o *Orchestrator) followStored(ctx context.Context, run *resource.Run, job, action string, send func([]wire.LogLine) error) error {
	s := o.logChunks(run, job, action)
	pos := logPos{}
	for {
		ended, err := o.actionEnded(ctx, run, job, action)
		if err != nil {
			return err
		}
		chunks, err := s.list(ctx)
		if err != nil {
			return fmt.Errorf("read the log of %s job %s action %s: %w", run.Name, job, action, err)
		}
		for k, c := range chunks {
			if c < pos.chunk {
				continue
			}
			if c > pos.chunk {
				pos = logPos{chunk: c} // a chunk that could not be stored
			}
			n, err := o.sendChunkFrom(ctx, s, pos, job, action, send)
			if err != nil {
				return err
			}
			pos.off += n
			if k+1 < len(chunks) {
				pos = logPos{chunk: chunks[k+1]}
			}
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(storedPoll):
		}
	}
}

// sendChunkFrom sends the whole lines of a stored chunk from pos.off on,
// and returns how many bytes they took.
func (o *Orchestrator) sendChunkFrom(ctx context.Context, s *storedLogChunks, pos logPos, job, action string, send func([]wire.LogLine) error) (int, error) {
	rc, err := s.get(ctx, pos.chunk)
	if errors.Is(err, sdk.ErrNotFound) {
		return 0, nil // the attempt's log was cleared for another attempt
	}
	if err != nil {
		return 0, fmt.Errorf("read chunk %d of the log of job %s action %s: %w", pos.chunk, job, action, err)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, int64(pos.off)); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		return 0, err
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		return 0, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	if len(b) == 0 {
		return 0, nil
	}
	return len(b), sendText(bytes.NewReader(b), job, action, send)
}

// actionEnded reports whether an action has ended (or waits for an
// approval), or its run has, from its job's document.
func (o *Orchestrator) actionEnded(ctx context.Context, run *resource.Run, job, action string) (bool, error) {
	doc := &resource.Job{}
	if err := o.store.get(ctx, resource.KindJob, run.Namespace, resource.JobResourceName(run.Name, job), doc); err != nil {
		return false, fmt.Errorf("read job %s of run %s: %w", job, run.Name, err)
	}
	if as := doc.JobStatus.Action(action); as != nil && (as.Status.Terminal() || as.Status == resource.StatusWaiting) {
		return true, nil
	}
	if doc.JobStatus.Status.Terminal() {
		return true, nil
	}
	r := &resource.Run{}
	if err := o.store.get(ctx, resource.KindRun, run.Namespace, run.Name, r); err != nil {
		return false, fmt.Errorf("read run %s: %w", run.Name, err)
	}
	return r.Status.Terminal(), nil
}

// sendStored sends an ended action's log from run storage.
func (o *Orchestrator) sendStored(ctx context.Context, run *resource.Run, job, action string, send func([]wire.LogLine) error) error {
	rc, err := o.logChunks(run, job, action).reader(ctx)
	if err != nil {
		return fmt.Errorf("read the log of %s job %s action %s: %w", run.Name, job, action, err)
	}
	defer rc.Close()
	return sendText(rc, job, action, send)
}

// actionLogReader reads an action's whole log: while it runs in this
// process, what it holds now; otherwise what is stored.
func (o *Orchestrator) actionLogReader(ctx context.Context, run *resource.Run, job, action string) (io.ReadCloser, error) {
	if l := o.logs.get(logKey(run.Namespace, run.Name, job, action)); l != nil {
		return l.reader(ctx), nil
	}
	rc, err := o.logChunks(run, job, action).reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the log of %s job %s action %s: %w", run.Name, job, action, err)
	}
	return rc, nil
}

// maxReadLine bounds one line read back from a log; longer lines (only in
// logs stored before lines were split) are sent in pieces.
const maxReadLine = maxLogLine + 4<<10

// lineSender sends the lines read from r in batches. drain may be called
// again after r has more to read.
type lineSender struct {
	br          *bufio.Reader
	job, action string
	send        func([]wire.LogLine) error
}

func newLineSender(r io.Reader, job, action string, send func([]wire.LogLine) error) *lineSender {
	return &lineSender{br: bufio.NewReaderSize(r, maxReadLine), job: job, action: action, send: send}
}

// drain sends every line up to the end of what r holds now.
func (s *lineSender) drain() error {
	var batch []wire.LogLine
	for {
		b, err := s.br.ReadSlice('\n')
		if len(b) > 0 {
			if batch == nil {
				batch = make([]wire.LogLine, 0, logBatch)
			}
			batch = append(batch, wire.LogLine{Job: s.job, Action: s.action, Line: string(bytes.TrimSuffix(b, []byte{'\n'}))})
			if len(batch) == logBatch {
				if err := s.send(batch); err != nil {
					return err
				}
				batch = nil
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("read the log of job %s action %s: %w", s.job, s.action, err)
			}
			break
		}
	}
	if len(batch) > 0 {
		return s.send(batch)
	}
	return nil
}

func sendText(r io.Reader, job, action string, send func([]wire.LogLine) error) error {
	return newLineSender(r, job, action, send).drain()
}

// Events subscribes to the event bus.
func (o *Orchestrator) Events(f events.Filter, replay bool, after uint64) (*events.Subscription, error) {
	if o.opts.Events == nil {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "this server has no event bus")
	}
	return o.opts.Events.Subscribe(f, replay, after, 256), nil
}

// Metrics serves the Prometheus metrics.
func (o *Orchestrator) Metrics() http.Handler {
	if o.opts.Metrics == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "this server keeps no metrics", http.StatusNotImplemented)
		})
	}
	return o.opts.Metrics.Handler()
}

// ListTriggerRecords lists trigger records, of one pipeline when pipeline
// is not empty.
func (o *Orchestrator) ListTriggerRecords(ctx context.Context, ns, pipeline string, page wire.PageRequest) (*wire.Page[resource.TriggerRecord], error) {
	var sel map[string]string
	if pipeline != "" {
		sel = map[string]string{"pipeline": pipeline}
	}
	items, next, err := list[resource.TriggerRecord](ctx, o.store, resource.KindTriggerRecord, ns, sel, page.Size, page.Token)
	if err != nil {
		return nil, fmt.Errorf("list trigger records: %w", err)
	}
	return &wire.Page[resource.TriggerRecord]{Items: items, NextPageToken: next}, nil
}

// GetTriggerRecord returns a trigger record.
func (o *Orchestrator) GetTriggerRecord(ctx context.Context, ns, name string) (*resource.TriggerRecord, error) {
	r := &resource.TriggerRecord{}
	if err := o.store.get(ctx, resource.KindTriggerRecord, ns, name, r); err != nil {
		return nil, fmt.Errorf("trigger record %s/%s: %w", ns, name, err)
	}
	return r, nil
}

// masked replaces a secret in dumps.
const masked = "********"

// DumpRun returns everything about a run for a bug report. Logs were
// masked when they were written; literal webhook secrets in the pipeline's
// spec and source are masked here.
func (o *Orchestrator) DumpRun(ctx context.Context, ns, name string) (*wire.RunDump, error) {
	run, err := o.GetRun(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	d := &wire.RunDump{Run: run, Logs: map[string]string{}, DumpedAt: o.now(), Timeline: wire.TimelineOf(run, o.now())}
	pv := &resource.PipelineVersion{}
	if err := o.store.get(ctx, resource.KindPipelineVersion, ns, fmt.Sprintf("%s.v%d", run.Pipeline, run.PipelineVersion), pv); err == nil {
		maskPipelineVersion(pv)
		d.Pipeline = pv
	} else if !errors.Is(err, sdk.ErrNotFound) {
		return nil, fmt.Errorf("read the pipeline version of %s: %w", name, err)
	}
	if run.Trigger.Record != "" {
		if rec, err := o.GetTriggerRecord(ctx, ns, run.Trigger.Record); err == nil {
			d.TriggerRecord = rec
		}
	}
	for _, j := range run.Jobs {
		for _, a := range j.Actions {
			rc, err := o.actionLogReader(ctx, run, j.Name, a.Name)
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			// A stored log ends within the limit, but for its last lines.
			lim := io.Reader(rc)
			if max := o.maxLogBytes(); max >= 0 {
				lim = io.LimitReader(rc, max+1<<20)
			}
			_, err = io.Copy(&b, lim)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("read the log of job %s action %s: %w", j.Name, a.Name, err)
			}
			d.Logs[j.Name+"/"+a.Name] = b.String()
		}
	}
	return d, nil
}

// maskPipelineVersion hides literal webhook secrets in a stored spec and
// source. Values read from credentials are never in either.
func maskPipelineVersion(pv *resource.PipelineVersion) {
	var secrets []string
	var stored spec.Pipeline
	if err := json.Unmarshal(pv.Spec, &stored); err == nil {
		changed := false
		for i := range stored.Spec.Triggers {
			if sec := stored.Spec.Triggers[i].Secret; sec != nil && sec.Value != "" {
				secrets = append(secrets, sec.Value)
				sec.Value = masked
				changed = true
			}
		}
		if changed {
			if b, err := json.Marshal(&stored); err == nil {
				pv.Spec = b
			}
		}
	}
	if p, err := spec.Parse("pipeline.yaml", []byte(pv.Source)); err == nil {
		for _, t := range p.Spec.Triggers {
			if t.Secret != nil && t.Secret.Value != "" {
				secrets = append(secrets, t.Secret.Value)
			}
		}
	}
	for _, s := range secrets {
		pv.Source = strings.ReplaceAll(pv.Source, s, masked)
	}
}
